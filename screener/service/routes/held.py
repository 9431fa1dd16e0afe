"""References held for an operator at registration (see screener/matching/registrability.py): the
list (operators all, a rights holder their own, with why), the image, approve and reject."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response

from screener.service.routes.common import AUTH_ERRORS, Key, TheRuntime, errors
from screener.service.schemas import HeldDecision, HeldOut, HeldPage, WorkOut

router = APIRouter(tags=["works"])
HeldId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/v1/references/held", response_model=HeldPage, responses=errors(*AUTH_ERRORS))
def list_held(key: Key, rt: TheRuntime) -> Any:
    """References waiting for an operator, oldest first, each with the rule that held it."""
    return HeldPage(items=[HeldOut.of(h) for h in rt.desk.held_references(key)])


@router.get(
    "/v1/works/{work_id}/held/{held_id}/image",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **errors(*AUTH_ERRORS, 404)},
)
def held_image(key: Key, rt: TheRuntime, work_id: str, held_id: HeldId) -> Response:
    """The held image's bytes as uploaded."""
    data = rt.desk.held_image(key, work_id, held_id)
    return Response(data, media_type="application/octet-stream")


@router.post(
    "/v1/works/{work_id}/held/{held_id}/approve",
    response_model=WorkOut,
    responses=errors(*AUTH_ERRORS, 404, 422),
)
def approve_held(
    key: Key, rt: TheRuntime, work_id: str, held_id: HeldId, body: HeldDecision | None = None
) -> Any:
    """Operators: the held image is the work's own; it is screened against from now on."""
    done = rt.desk.approve_held(key, work_id, held_id, body.note if body else "")
    return WorkOut.of(done.work, references_added=list(done.added_references))


@router.post(
    "/v1/works/{work_id}/held/{held_id}/reject",
    response_model=WorkOut,
    responses=errors(*AUTH_ERRORS, 404, 422),
)
def reject_held(
    key: Key, rt: TheRuntime, work_id: str, held_id: HeldId, body: HeldDecision | None = None
) -> Any:
    """Operators: the held image never becomes part of the work."""
    rt.desk.reject_held(key, work_id, held_id, body.note if body else "")
    return WorkOut.of(rt.desk.get_work(key, work_id).work)
