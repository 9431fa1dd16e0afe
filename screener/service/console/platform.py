"""Platforms' page: try a check as the API would run it, and see what an end user sees."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from screener.core.errors import InputError
from screener.service.console.holder import uploads
from screener.service.console.i18n import gettext as _
from screener.service.console.web import FormViewer, TheViewer, Viewer, redirect, render
from screener.service.errors import status_of
from screener.store.keys import Role

router = APIRouter()

CHECKERS = (Role.PLATFORM, Role.OPERATOR)


@router.get("/takedown", response_class=HTMLResponse)
def takedown_page(request: Request, who: TheViewer) -> Response:
    """Released outputs that a later notice matched: the platform must take them down."""
    who.require(*CHECKERS)
    items, total = who.desk.list_checks(who.key, takedown=True, limit=200)
    return render(request, "takedown.html", who, items=items, total=total)


def _try_page(request: Request, who: Viewer, status: int = 200, **extra: Any) -> Response:
    recent, _ = who.desk.find_checks(who.key, limit=10)
    return render(request, "try.html", who, status=status, recent=recent, **extra)


@router.get("/try", response_class=HTMLResponse)
def try_page(request: Request, who: TheViewer) -> Response:
    who.require(*CHECKERS)
    return _try_page(request, who, form={})


@router.post("/try")
def try_check(
    request: Request,
    who: FormViewer,
    image: Annotated[UploadFile | None, File()] = None,
    prompt: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    who.require(*CHECKERS)
    form = {"prompt": prompt}
    try:
        files = uploads([image] if image is not None else [])
        if not files:
            raise InputError(_("Choose an image to check."))
        outcome = who.desk.check(who.key, files[:1], prompt.strip() or None)[0]
        if isinstance(outcome, InputError):
            raise outcome
    except InputError as exc:
        return _try_page(request, who, status_of(exc), form=form, error=str(exc))
    return redirect(f"/checks/{outcome.check_id}")
