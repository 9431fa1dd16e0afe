"""Admins' page: API keys (create, list, revoke) and owners' display names, over the same
desk calls (and audit records) as `POST /v1/keys`, `DELETE /v1/keys/{id}` and
`PUT /v1/owners/{owner}`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from screener.core.errors import InputError
from screener.service.console.web import FormViewer, TheViewer, Viewer, redirect, render
from screener.service.errors import status_of
from screener.store.keys import Role

router = APIRouter()


def _keys_page(request: Request, who: Viewer, status: int = 200, **extra: Any) -> Response:
    who.require(Role.ADMIN)
    keys = who.desk.list_keys(who.key)
    names = who.desk.keys.display_names(k.owner for k in keys)
    return render(
        request,
        "keys.html",
        who,
        status=status,
        keys=keys,
        names=names,
        roles=list(Role),
        form=extra.pop("form", {}),
        **extra,
    )


@router.get("/keys", response_class=HTMLResponse)
def keys_page(request: Request, who: TheViewer) -> Response:
    return _keys_page(request, who)


@router.post("/keys", response_class=HTMLResponse)
def create_key(
    request: Request,
    who: FormViewer,
    role: Annotated[str, Form(max_length=40)] = "",
    owner: Annotated[str, Form(max_length=200)] = "",
    description: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """The new key is shown on this answer only (never stored in the clear)."""
    who.require(Role.ADMIN)
    form = {"role": role, "owner": owner, "description": description}
    try:
        made, secret = who.desk.create_key(who.key, role, owner.strip(), description)
    except InputError as exc:
        return _keys_page(request, who, status_of(exc), form=form, error=str(exc))
    return _keys_page(request, who, 201, created=made, secret=secret)


@router.post("/keys/{key_id}/revoke")
def revoke_key(who: FormViewer, key_id: str) -> Response:
    who.require(Role.ADMIN)
    who.desk.revoke_key(who.key, key_id)
    return redirect("/keys", "key_revoked")


@router.post("/owners/display-name")
def display_name(
    request: Request,
    who: FormViewer,
    owner: Annotated[str, Form(max_length=200)] = "",
    display_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """The name risk prompts give an owner (empty: its account name again)."""
    who.require(Role.ADMIN)
    try:
        who.desk.set_display_name(who.key, owner.strip(), display_name)
    except InputError as exc:
        form = {"name_owner": owner, "display_name": display_name}
        return _keys_page(request, who, status_of(exc), form=form, name_error=str(exc))
    return redirect("/keys", "display_name")
