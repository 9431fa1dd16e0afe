"""The review queue: checks decided `review` wait here for an operator."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from screener.service.routes.common import AUTH_ERRORS, Key, Limit, Offset, TheRuntime, errors, page
from screener.service.schemas import CheckOut, CheckPage, ReviewDecision

router = APIRouter(prefix="/v1/review", tags=["review"])


@router.get("", response_model=CheckPage, responses=errors(*AUTH_ERRORS, 422))
def queue(
    key: Key,
    rt: TheRuntime,
    offset: Offset = 0,
    limit: Limit = 50,
    status: Annotated[str, Query(pattern="^(pending|confirmed|rejected)$")] = "pending",
) -> Any:
    """Oldest first. `status=rejected` lists the false positives, for threshold tuning."""
    found = rt.desk.review_queue(key, offset=offset, limit=limit, status=status)
    return page(CheckPage, CheckOut.of, found, offset, limit)


@router.post(
    "/{check_id}/confirm",
    response_model=CheckOut,
    responses=errors(*AUTH_ERRORS, 404, 409, 422),
)
def confirm(key: Key, rt: TheRuntime, check_id: str, body: ReviewDecision) -> Any:
    """A copy: the output joins the work's references, so the next one like it is caught."""
    return CheckOut.of(rt.desk.confirm_review(key, check_id, body.work_id, body.note))


@router.post(
    "/{check_id}/reject",
    response_model=CheckOut,
    responses=errors(*AUTH_ERRORS, 404, 409, 422),
)
def reject(key: Key, rt: TheRuntime, check_id: str, body: ReviewDecision) -> Any:
    """Not a copy: recorded as a false positive with its evidence."""
    return CheckOut.of(rt.desk.reject_review(key, check_id, body.note))
