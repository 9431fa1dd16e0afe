"""Appeals in the console: the operator's queue (decide), the rights holder's appeals
against their works (respond) and the platform's status view (file, follow). One page
whose content follows the role; the rules are the API's (screener/duties/appeals.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from screener.core.errors import InputError
from screener.service.console.i18n import N_
from screener.service.console.i18n import gettext as _
from screener.service.console.web import FormViewer, TheViewer, Viewer, redirect, render, runtime
from screener.service.errors import status_of
from screener.store.keys import Role

router = APIRouter()

DONE = {
    "filed": N_("Appeal filed: the rights holder is told, and an operator will decide."),
    "responded": N_("Response sent."),
    "upheld": N_("Upheld: the output stays held."),
    "overturned": N_("Overturned: the output is released and recorded as a false positive."),
}


def _page(request: Request, who: Viewer, status: int = 200, error: str | None = None) -> Response:
    appeals = runtime(request).appeals
    which = request.query_params.get("status") or None
    try:
        items, total = appeals.list(who.key, status=which, limit=200)
    except InputError:
        items, total = appeals.list(who.key, limit=200)
    late = appeals.overdue() if who.staff else None
    done = request.query_params.get("appeal") or ""
    return render(
        request,
        "appeals.html",
        who,
        status=status,
        items=items,
        total=total,
        late=late,
        error=error,
        shown=_(DONE[done]) if done in DONE else None,
    )


def _step(request: Request, who: Viewer, action: Callable[[], object], done: str) -> Response:
    """One step on an appeal: on success back to the page saying so (``done``), on a bad
    input the page again with the error."""
    try:
        action()
    except InputError as exc:
        return _page(request, who, status_of(exc), str(exc))
    return redirect(f"/appeals?appeal={done}")


@router.get("/appeals", response_class=HTMLResponse)
def appeals_page(request: Request, who: TheViewer) -> Response:
    return _page(request, who)


@router.post("/appeals")
def file_appeal(
    request: Request,
    who: FormViewer,
    check_id: Annotated[str, Form(max_length=40)] = "",
    statement: Annotated[str, Form(max_length=4000)] = "",
    contact_ref: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    who.require(Role.PLATFORM)
    appeals = runtime(request).appeals
    return _step(
        request,
        who,
        lambda: appeals.file(who.key, check_id.strip(), statement, contact_ref.strip() or None),
        "filed",
    )


@router.post("/appeals/{appeal_id}/response")
def respond(
    request: Request,
    who: FormViewer,
    appeal_id: str,
    text: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    appeals = runtime(request).appeals
    return _step(request, who, lambda: appeals.respond(who.key, appeal_id, text), "responded")


@router.post("/appeals/{appeal_id}/decision")
def decide(
    request: Request,
    who: FormViewer,
    appeal_id: str,
    outcome: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    appeals = runtime(request).appeals
    return _step(request, who, lambda: appeals.decide(who.key, appeal_id, outcome, reason), outcome)
