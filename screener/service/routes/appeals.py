"""End users' appeals against held outputs: filed by the platform, answered by the rights
holders whose works held the output, decided by an operator (see screener/duties/appeals.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from screener.duties.appeals import Appeal
from screener.service.routes.common import AUTH_ERRORS, Key, Limit, Offset, TheRuntime, errors, page

router = APIRouter(prefix="/v1", tags=["appeals"])


class NewAppeal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    statement: str = Field(min_length=1, max_length=4000, description="the end user's statement")
    contact_ref: str | None = Field(
        default=None, max_length=200, description="your opaque reference to reach the user"
    )


class AppealResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4000, description="the rights holder's answer")


class AppealDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["upheld", "overturned"] = Field(
        description="upheld keeps the output held; overturned releases it (a false positive)"
    )
    reason: str = Field(min_length=1, max_length=4000)


class AppealOut(BaseModel):
    appeal_id: str
    check_id: str
    platform: str = Field(description="empty for rights holders")
    created_at: str
    statement: str
    contact_ref: str | None = Field(description="null for rights holders")
    status: str = Field(description="open, upheld or overturned")
    respond_by: str = Field(description="the rights holder's deadline to respond")
    decide_by: str = Field(description="the operator's deadline to decide")
    responded_at: str | None
    works: list[str] = Field(description="the works that held the output")
    responses: list[dict[str, Any]]
    decision: dict[str, Any] | None
    history: list[dict[str, Any]]
    response_overdue: bool
    decision_overdue: bool
    overdue: bool
    released: bool = Field(description="true once overturned: the output may be published")

    @classmethod
    def of(cls, appeal: Appeal) -> AppealOut:
        return cls(**appeal.to_dict())


class AppealPage(BaseModel):
    items: list[AppealOut]
    total: int
    offset: int
    limit: int


@router.post(
    "/checks/{check_id}/appeal",
    status_code=201,
    response_model=AppealOut,
    responses=errors(*AUTH_ERRORS, 404, 409, 422),
    summary="Appeal a held output for its end user",
)
def file_appeal(key: Key, rt: TheRuntime, check_id: str, body: NewAppeal) -> Any:
    """Platforms, for their own checks decided review or block (one appeal per check).
    The owners of the works that held it are told and may respond; the deadlines come
    from the policy (`appeals.respond_days`, `appeals.decide_days`)."""
    return AppealOut.of(rt.appeals.file(key, check_id, body.statement, body.contact_ref))


@router.get("/appeals", response_model=AppealPage, responses=errors(*AUTH_ERRORS, 422))
def list_appeals(
    key: Key,
    rt: TheRuntime,
    offset: Offset = 0,
    limit: Limit = 50,
    status: Annotated[str | None, Query(pattern="^(open|upheld|overturned)$")] = None,
    overdue: bool | None = None,
) -> Any:
    """Earliest decision deadline first: a platform's own appeals, those against a rights
    holder's works, all for operators. `overdue=true`: open appeals past a deadline."""
    found = rt.appeals.list(key, status=status, overdue=overdue, offset=offset, limit=limit)
    return page(AppealPage, AppealOut.of, found, offset, limit)


@router.get("/appeals/{appeal_id}", response_model=AppealOut, responses=errors(*AUTH_ERRORS, 404))
def get_appeal(key: Key, rt: TheRuntime, appeal_id: str) -> Any:
    return AppealOut.of(rt.appeals.get(key, appeal_id))


@router.post(
    "/appeals/{appeal_id}/response",
    response_model=AppealOut,
    responses=errors(*AUTH_ERRORS, 404, 409, 422),
)
def respond(key: Key, rt: TheRuntime, appeal_id: str, body: AppealResponse) -> Any:
    """Rights holders whose work held the output, while the appeal is open (an answer
    after `respond_by` is kept, marked late)."""
    return AppealOut.of(rt.appeals.respond(key, appeal_id, body.text))


@router.post(
    "/appeals/{appeal_id}/decision",
    response_model=AppealOut,
    responses=errors(*AUTH_ERRORS, 404, 409, 422),
)
def decide(key: Key, rt: TheRuntime, appeal_id: str, body: AppealDecision) -> Any:
    """Operators. `overturned` releases the output and records the check as a false
    positive (it joins `GET /v1/review?status=rejected`)."""
    return AppealOut.of(rt.appeals.decide(key, appeal_id, body.outcome, body.reason))
