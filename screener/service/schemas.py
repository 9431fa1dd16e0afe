"""Request and response bodies, as the OpenAPI schema shows them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from screener.store.catalog import HeldReference, Reference, Work
from screener.store.check_records import CheckRecord, Notice
from screener.store.jobs import Job
from screener.store.keys import ApiKey


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail
    request_id: str | None = None


class CheckResult(BaseModel):
    """One image's result: a verdict, or the error that stopped it (the others go on)."""

    index: int
    filename: str
    check_id: str | None = None
    decision: str | None = Field(default=None, description="allow, review or block")
    fused_score: float | None = None
    risk_prompt: dict[str, str] | None = Field(
        default=None, description="text to show the end user (zh, en) for review and block"
    )
    audit_seq: int | None = None
    action: str | None = Field(
        default=None, description="publish, hold (until reviewed) or do_not_publish"
    )
    verdict: dict[str, Any] | None = Field(
        default=None, description="decision, matches with per-signal values, thresholds, versions"
    )
    error: ErrorDetail | None = None


class CheckResponse(BaseModel):
    results: list[CheckResult]


class CheckOut(BaseModel):
    check_id: str
    created_at: str
    platform: str
    user_ref: str | None
    decision: str
    fused_score: float
    top_work_id: str | None
    verdict: dict[str, Any]
    audit_seq: int | None
    review_status: str | None
    review: dict[str, Any] | None
    rescreen: dict[str, Any] | None
    action: str = Field(
        description="what to do with the output now: publish, hold (review pending), "
        "do_not_publish (blocked, or confirmed by a reviewer), take_down (released, but a "
        "later notice matched it)"
    )

    @classmethod
    def of(cls, record: CheckRecord) -> CheckOut:
        return cls(**record.to_dict())


class CheckPage(BaseModel):
    items: list[CheckOut]
    total: int
    offset: int
    limit: int


class OriginOut(BaseModel):
    kind: str = Field(
        description="uploaded (by the owner, or approved after a hold), review (a reviewer "
        "confirmed check `source` as a copy) or notice (added by notice `source`)"
    )
    source: str | None = Field(default=None, description="the check or notice id")


class ReferenceOut(BaseModel):
    id: int
    sha256: str
    source_name: str
    format: str
    width: int
    height: int
    origin: OriginOut | None = None

    @classmethod
    def of(cls, ref: Reference, origin: OriginOut | None = None) -> ReferenceOut:
        return cls(
            id=ref.id,
            sha256=ref.sha256,
            source_name=ref.source_name,
            format=ref.format,
            width=ref.width,
            height=ref.height,
            origin=origin,
        )


class FindingOut(BaseModel):
    """A registrability rule a reference broke: the measured value and the threshold."""

    rule: str
    measure: str
    value: float
    threshold: float
    action: str
    reason: str


class HeldOut(BaseModel):
    """A reference image held for an operator: stored, not screened against until approved."""

    held_id: int
    work_id: str
    owner: str
    source_name: str
    format: str
    width: int
    height: int
    findings: list[FindingOut]
    created_at: str

    @classmethod
    def of(cls, held: HeldReference) -> HeldOut:
        return cls(
            held_id=held.id,
            work_id=held.work_id,
            owner=held.owner,
            source_name=held.source_name,
            format=held.format,
            width=held.width,
            height=held.height,
            findings=[FindingOut.model_validate(f) for f in held.findings],
            created_at=held.created_at.isoformat(),
        )


class HeldPage(BaseModel):
    items: list[HeldOut]


class HeldDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=2000)


class WorkOut(BaseModel):
    work_id: str
    title: str
    owner: str
    aliases: list[str]
    related_terms: list[str] = Field(
        default_factory=list, description="descriptive terms: weaker prompt evidence than names"
    )
    thresholds: dict[str, float] | None
    licensees: list[str]
    reference_count: int
    created_at: str
    territories: list[str] = Field(
        default_factory=list, description="ISO 3166-1 alpha-2 codes where protected; []: all"
    )
    licensee_territories: dict[str, list[str]] = Field(
        default_factory=dict, description="where each licence holds (absent: everywhere)"
    )
    threshold_territories: list[str] = Field(
        default_factory=list, description="where the work's own thresholds apply; []: all"
    )
    references: list[ReferenceOut] | None = None
    references_added: list[int] | None = None
    references_already_registered: int | None = None
    # Held for an operator (see screener/matching/registrability.py): not screened against yet.
    references_held: list[HeldOut] | None = None

    @classmethod
    def of(
        cls,
        work: Work,
        references: list[Reference] | None = None,
        origins: Mapping[int, Any] | None = None,
        **extra: Any,
    ) -> WorkOut:
        found = origins or {}
        return cls(
            work_id=work.id,
            title=work.title,
            owner=work.owner,
            aliases=list(work.aliases),
            related_terms=list(work.related_terms),
            thresholds=work.thresholds,
            licensees=list(work.licensees),
            reference_count=work.reference_count,
            created_at=work.created_at.isoformat(),
            territories=list(work.territories),
            licensee_territories={k: list(v) for k, v in work.licensee_territories.items()},
            threshold_territories=list(work.threshold_territories),
            references=None
            if references is None
            else [
                ReferenceOut.of(r, OriginOut(**found[r.id].to_dict()) if r.id in found else None)
                for r in references
            ],
            **extra,
        )


class WorkPage(BaseModel):
    items: list[WorkOut]
    total: int
    offset: int
    limit: int


class Removed(BaseModel):
    removed: bool = True
    fingerprints_removed: int


class Licensees(BaseModel):
    model_config = ConfigDict(extra="forbid")
    licensees: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        max_length=1000, description="platform owner names"
    )


class Thresholds(BaseModel):
    """A work's own bands; one left out keeps the policy's value. Review must not be above
    block (checked here when both are given, and against the policy's bands by the desk)."""

    model_config = ConfigDict(extra="forbid")
    review: float | None = Field(default=None, gt=0, lt=1)
    block: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.review is not None and self.block is not None and self.review > self.block:
            raise ValueError(f"review ({self.review:g}) must not be above block ({self.block:g})")
        return self


class JobProgress(BaseModel):
    done: int
    total: int


class JobOut(BaseModel):
    job_id: str
    kind: str = Field(description="notice (a notice's re-screening) or retention")
    notice_id: str | None
    state: str = Field(description="queued, running, done or failed")
    progress: JobProgress
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None
    result: dict[str, Any] | None = Field(
        description="once done: for a notice, the measures (`affected`, `affected_check_ids`, "
        "`rescreened_checks`, `candidate_checks`); for retention, `fingerprints_removed`"
    )

    @classmethod
    def of(cls, item: Job) -> JobOut:
        return cls(**item.to_dict())


class NoticeOut(BaseModel):
    notice_id: str
    created_at: str
    updated_at: str
    owner: str
    work_id: str
    new_work: bool
    description: str
    check_ids: list[str]
    status: str = Field(description="received, measures_taken or rejected")
    history: list[dict[str, Any]]
    measures: dict[str, Any] | None
    reason: str | None
    job: JobOut | None = Field(
        default=None, description="the job taking the measures (GET /v1/jobs/{job_id})"
    )

    @classmethod
    def of(cls, item: Notice) -> NoticeOut:
        return cls(**item.to_dict())


class NoticePage(BaseModel):
    items: list[NoticeOut]
    total: int
    offset: int
    limit: int


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    work_id: str | None = Field(default=None, max_length=200, description="default: the top match")
    note: str = Field(default="", max_length=2000)


class AuditRecordOut(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class VerifyOut(BaseModel):
    ok: bool
    count: int
    broken_at: int | None
    reason: str | None
    head_seq: int
    head_hash: str


class DisplayName(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str = Field(
        max_length=200,
        description="what risk prompts call the owner (empty: its account name again)",
        examples=["圆谷制作株式会社"],
    )


class OwnerOut(BaseModel):
    owner: str
    display_name: str


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str = Field(description="platform, rights_holder, operator or admin")
    owner: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=1000)


class KeyOut(BaseModel):
    key_id: str
    owner: str
    role: str
    created_at: str
    revoked_at: str | None
    description: str
    key: str | None = Field(default=None, description="the full key: shown once, at creation")

    @classmethod
    def of(cls, key: ApiKey, secret: str | None = None) -> KeyOut:
        return cls(
            key_id=key.id,
            owner=key.owner,
            role=key.role.value,
            created_at=key.created_at.isoformat(),
            revoked_at=None if key.revoked_at is None else key.revoked_at.isoformat(),
            description=key.description,
            key=secret,
        )


class LabelOut(BaseModel):
    labelled: bool
    label: dict[str, Any] | None
    c2pa: dict[str, Any] | None = Field(
        default=None,
        description="C2PA credentials: present, validation_state, valid, trusted, failures, "
        "assertions, check, created, signer, offline",
    )


class Health(BaseModel):
    status: str
    detail: dict[str, Any] = Field(default_factory=dict)


class PromptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = Field(min_length=1, max_length=2000, description="the prompt to screen")
    user_ref: str | None = Field(
        default=None, max_length=200, description="your opaque user or session reference"
    )


class PromptTermOut(BaseModel):
    term: str = Field(description="the term as registered")
    matched_as: str = Field(description="the prompt's own text that matched it")
    how: str = Field(description="exact, homoglyph, separator, romanised, fuzzy or related")


class PromptMatchOut(BaseModel):
    work_id: str
    title: str
    owner: str
    score: float = Field(description="the work's prompt score in [0, 1] under the policy")
    licensed: bool = Field(description="the caller may publish this work: never refused")
    terms: list[PromptTermOut]


class PromptOut(BaseModel):
    prompt_check_id: str
    prompt: str
    decision: str = Field(description="allow, warn or refuse")
    score: float
    matches: list[PromptMatchOut]
    risk_prompt: dict[str, str] | None = Field(
        default=None, description="text to show the end user (zh, en) for warn and refuse"
    )
    audit_seq: int
