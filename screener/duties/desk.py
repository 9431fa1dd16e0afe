"""The desk: every duty a caller of the service may ask for, who may ask, and the audit
record each leaves.

The HTTP service is a thin skin over this class: it authenticates a key, then calls
one method here. Every rule about roles and owners lives here, so it is tested without
HTTP, and a caller who may not see an object gets the same :class:`NotFound` as for an
object that does not exist.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from screener.core import policy as policy_mod
from screener.core.errors import (
    Conflict,
    Forbidden,
    InputError,
    NotFound,
    PolicyError,
    is_plain_id,
    quote,
)
from screener.core.policy import Decision, Policy
from screener.core.prompt.result import PromptResult
from screener.core.risk import risk_prompt
from screener.core.verdict import Verdict
from screener.duties import redaction, stats
from screener.labels import gb45438 as labels_mod
from screener.matching import explain as explain_mod
from screener.matching import outputs as outputs_mod
from screener.matching.pipeline import (
    Analysis,
    CheckItem,
    Prepared,
    Registered,
    Screener,
    check_work_id,
)
from screener.matching.signals import RegionFingerprint, from_stored, vector_bytes
from screener.store import policy_store as policies
from screener.store.audit import AuditLog, AuditRecord, VerifyReport, ensure_tables, format_at
from screener.store.catalog import (
    BlobRow,
    HeldReference,
    Reference,
    ReferenceRow,
    RegisterHook,
    Work,
    unavailable,
)
from screener.store.check_records import (
    CHECK_TABLES,
    CheckFingerprintRow,
    CheckMatchRow,
    CheckPictureRow,
    CheckRecord,
    CheckRow,
    Notice,
    NoticeRow,
    ReferenceOriginRow,
    action_of,
    check_record,
    iso,
    new_id,
    notice,
    now,
)
from screener.store.keys import ApiKey, KeyStore, Role, can_manage_work, can_read_work, require_role

MAX_PAGE = 500
MAX_TEXT = 2000
MAX_NAMED_CHECKS = 100
WORK_ROLES = (Role.RIGHTS_HOLDER, Role.OPERATOR, Role.ADMIN)
_RESCREEN_BATCH = 200
# Evidence pictures drawn with a held check, from its own analysis (more matched works, a
# rare case, are drawn when first asked for and kept from then on).
MAX_PICTURES = 5


@dataclass(frozen=True)
class Upload:
    """An image as the caller sent it."""

    data: bytes
    name: str


@dataclass(frozen=True)
class CheckOutcome:
    check_id: str
    verdict: Verdict
    risk_prompt: dict[str, str] | None
    audit_seq: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "decision": self.verdict.decision,
            "fused_score": self.verdict.fused_score,
            "risk_prompt": self.risk_prompt,
            "audit_seq": self.audit_seq,
            "action": action_of(
                self.verdict.decision,
                "pending" if self.verdict.decision == Decision.REVIEW.value else None,
                None,
            ),
            "verdict": self.verdict.to_dict(),
        }


@dataclass(frozen=True)
class PromptOutcome:
    """A prompt check before generation, as recorded."""

    prompt_check_id: str
    result: PromptResult
    audit_seq: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_check_id": self.prompt_check_id,
            **self.result.to_dict(),
            "audit_seq": self.audit_seq,
        }


@dataclass(frozen=True)
class Origin:
    """Where a reference came from: ``uploaded`` by its owner (or approved after a hold),
    added by a reviewer's confirmation of check ``source`` (``review``), or by notice
    ``source`` (``notice``)."""

    kind: str = "uploaded"
    source: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "source": self.source}


@dataclass(frozen=True)
class WorkView:
    work: Work
    references: tuple[Reference, ...] = field(default_factory=tuple)
    held: tuple[HeldReference, ...] = field(default_factory=tuple)
    origins: dict[int, Origin] = field(default_factory=dict)


def _text(name: str, value: str | None, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    if len(value) > limit:
        raise InputError(f"{name} is longer than {limit} characters")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
        raise InputError(f"{name} contains control characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, from a JSON "\\ud800" escape
            raise InputError(f"{name} is not valid Unicode text") from None
    return value


def _terms(name: str, values: Sequence[str], most: int = 100) -> list[str]:
    """Terms stripped, blanks and repeats dropped, each checked like an alias."""
    cleaned = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    for value in cleaned:
        _text(name, value, 200)
    if len(cleaned) > most:
        raise InputError(f"at most {most} {name}s")
    return cleaned


def _page(offset: int, limit: int) -> None:
    if offset < 0:
        raise InputError("offset must not be negative")
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"limit must be between 1 and {MAX_PAGE}")


class Desk:
    """Checks, works, notices, review, audit, keys and labels, each behind its role."""

    def __init__(self, screener: Screener) -> None:
        self.screener = screener
        self.engine = screener.catalog.engine
        self.audit = AuditLog(self.engine)
        self.keys = KeyStore(self.engine, self.audit)
        ensure_tables(self.engine, CHECK_TABLES)
        self.restore_policy()  # one put into force from the console before a restart

    # auth ---------------------------------------------------------------------------------

    def authenticate(self, key_string: object) -> ApiKey:
        return self.keys.authenticate(key_string)

    def _work_for(self, key: ApiKey, work_id: str, *, manage: bool = False) -> Work:
        require_role(key, Role.RIGHTS_HOLDER, Role.OPERATOR, Role.ADMIN)
        found = (
            self.screener.catalog.works([work_id]).get(work_id) if is_plain_id(work_id) else None
        )
        allowed = found is not None and (
            can_manage_work(key, found.owner) if manage else can_read_work(key, found.owner)
        )
        if found is None or not allowed:
            raise NotFound(f"no work {quote(work_id)}")
        return found

    # checks -------------------------------------------------------------------------------

    @staticmethod
    def authorise_check(key: ApiKey) -> None:
        require_role(key, Role.PLATFORM, Role.OPERATOR)

    @staticmethod
    def authorise_works(key: ApiKey) -> None:
        """Registering works, adding references, filing notices: before any upload is read,
        so a key that may not do it learns nothing about its request (not even its size)."""
        require_role(key, *WORK_ROLES)

    def screen(self, items: Sequence[CheckItem]) -> list[Analysis | InputError]:
        """The CPU part of checks (decode, fingerprint, search, fuse): batchable, no state."""
        return self.screener.analyse_many(items)

    def check(
        self,
        key: ApiKey,
        uploads: Sequence[Upload],
        prompt: str | None = None,
        user_ref: str | None = None,
    ) -> list[CheckOutcome | InputError]:
        """Screen and record each upload (one failing does not stop the others)."""
        self.authorise_check(key)
        analyses = self.screen([CheckItem(u.data, prompt, key.owner) for u in uploads])
        return [
            a if isinstance(a, InputError) else self.record_check(key, u, a, prompt, user_ref)
            for u, a in zip(uploads, analyses, strict=True)
        ]

    def record_check(
        self,
        key: ApiKey,
        upload: Upload,
        analysis: Analysis,
        prompt: str | None,
        user_ref: str | None,
    ) -> CheckOutcome:
        """Store a check with its audit record in one transaction."""
        prompt = _text("prompt", prompt)
        user_ref = _text("user_ref", user_ref, 200)
        verdict = analysis.verdict
        check_id = new_id("chk")
        sha256 = str(verdict.input["sha256"])
        keep_image = verdict.decision != Decision.ALLOW.value
        created = now()
        pictures = (
            self._draw_pictures(check_id, created, upload.data, analysis) if keep_image else []
        )
        with Session(self.engine) as session, session.begin():
            self.audit.lock(session)
            if keep_image and session.get(BlobRow, sha256) is None:
                session.add(BlobRow(sha256=sha256, data=upload.data))
            row = CheckRow(
                id=check_id,
                created_at=created,
                platform=key.owner,
                key_id=key.id,
                user_ref=user_ref,
                prompt=prompt,
                input_sha256=sha256,
                decision=verdict.decision,
                fused_score=verdict.fused_score,
                top_work_id=verdict.top_work_id,
                verdict=verdict.to_dict(),
                image_sha256=sha256 if keep_image else None,
                review_status="pending" if verdict.decision == Decision.REVIEW.value else None,
            )
            session.add(row)
            session.flush()
            session.add_all(
                CheckMatchRow(
                    check_id=check_id,
                    work_id=m.work_id,
                    owner=m.owner,
                    decision=m.decision,
                    fused_score=m.fused_score,
                    licensed=m.licensed,
                )
                for m in verdict.matches + verdict.licensed
            )
            session.add_all(
                CheckPictureRow(check_id=check_id, work_id=p.work_id, png=p.png) for p in pictures
            )
            if verdict.decision == Decision.ALLOW.value:
                session.add_all(
                    CheckFingerprintRow(
                        check_id=check_id,
                        signal=fp.signal,
                        spec_id=self.screener.signals.available[fp.signal].spec_id,
                        region=fp.region,
                        vector=vector_bytes(fp.fingerprint),
                        quality=fp.fingerprint.quality,
                    )
                    for fp in analysis.query
                )
            record = self.audit.append_in(
                session,
                key.id,
                "check",
                check_id,
                {
                    "platform": key.owner,
                    "user_ref": user_ref,
                    "input_sha256": sha256,
                    "decision": verdict.decision,
                    "fused_score": verdict.fused_score,
                    "top_work_id": verdict.top_work_id,
                    "matched_works": [m.work_id for m in verdict.matches],
                    # The release territory decides whether a match holds the output.
                    "territory": verdict.territory,
                    "policy_version": verdict.policy_version,
                    "index_version": verdict.index_version,
                    "models": verdict.models,
                },
            )
            row.audit_seq = record.seq
        return CheckOutcome(check_id, verdict, self._risk_prompt(verdict), record.seq)

    def _risk_prompt(self, verdict: Verdict) -> dict[str, str] | None:
        top = verdict.top_match
        names = self.keys.display_names([top.owner] if top is not None and top.owner else [])
        return risk_prompt(verdict, names)

    def _draw_pictures(
        self, check_id: str, created: dt.datetime, data: bytes, analysis: Analysis
    ) -> list[explain_mod.Picture]:
        """The evidence pictures of a held check, drawn from the analysis it was decided on
        (its candidates, local matches and the references as they are now)."""
        verdict = analysis.verdict
        works = [m.work_id for m in verdict.matches + verdict.licensed][:MAX_PICTURES]
        if not works:
            return []
        decoded = self.screener.decode(data)
        drawn = []
        for work_id in dict.fromkeys(works):
            try:
                drawn.append(
                    self.screener.picture(decoded, analysis, work_id, _caption(check_id, created))
                )
            except NotFound:
                continue
        return drawn

    def check_prompt(self, key: ApiKey, prompt: str, user_ref: str | None = None) -> PromptOutcome:
        """Screen a prompt before generation and audit it like a check (the record keeps
        the prompt's sha256 and what matched, not its text)."""
        self.authorise_check(key)
        text = _text("prompt", prompt) or ""
        if not text.strip():
            raise InputError("prompt must not be empty")
        user_ref = _text("user_ref", user_ref, 200)
        result = self.screener.check_prompt(text, platform=key.owner)
        result = replace(
            result, owner_names=self.keys.display_names(m.owner for m in result.matches)
        )
        prompt_check_id = new_id("prm")
        with Session(self.engine) as session, session.begin():
            record = self.audit.append_in(
                session,
                key.id,
                "prompt.check",
                prompt_check_id,
                {
                    "platform": key.owner,
                    "user_ref": user_ref,
                    "prompt_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                    "decision": result.decision.value,
                    "score": result.score,
                    "matched_works": [m.work_id for m in result.matches],
                    "matched_terms": {
                        m.work_id: [[t.term, t.how] for t in m.terms] for m in result.matches
                    },
                    "policy_version": self.screener.policy.version,
                    "terms_version": self.screener.prompts.mark,
                },
            )
        return PromptOutcome(prompt_check_id, result, record.seq)

    def _check_row(self, session: Session, key: ApiKey, check_id: str) -> CheckRow:
        """The check if ``key`` may read it (the platform that made it, operators, and the
        owners of works it matched); else :class:`NotFound`."""
        row = session.get(CheckRow, check_id) if is_plain_id(check_id, 40) else None
        if row is not None:
            if key.role in (Role.OPERATOR, Role.ADMIN):
                return row
            if key.role == Role.PLATFORM and row.platform == key.owner:
                return row
            if key.role == Role.RIGHTS_HOLDER and (
                self._matched_owner(session, check_id, key.owner)
                or self._rescreened_for(row, key.owner)
            ):
                return row
        raise NotFound(f"no check {quote(check_id)}")

    def _rescreened_for(self, row: CheckRow, owner: str) -> bool:
        """A released output that a notice found to match one of ``owner``'s works: that
        owner may see it (cut by :mod:`screener.duties.redaction`) to ask for its take-down."""
        work_id = (row.rescreen or {}).get("work_id")
        if not isinstance(work_id, str):
            return False
        found = self.screener.catalog.works([work_id]).get(work_id)
        return found is not None and found.owner == owner

    def readable_checks(self, key: ApiKey, check_ids: Sequence[str]) -> set[str]:
        """Which of ``check_ids`` ``key`` may open (for links)."""
        readable = set()
        with Session(self.engine) as session:
            for check_id in dict.fromkeys(check_ids):
                try:
                    self._check_row(session, key, check_id)
                except NotFound:
                    continue
                readable.add(check_id)
        return readable

    @staticmethod
    def _matched_owner(session: Session, check_id: str, owner: str) -> bool:
        found = session.scalar(
            select(func.count())
            .select_from(CheckMatchRow)
            .where(CheckMatchRow.check_id == check_id, CheckMatchRow.owner == owner)
        )
        return bool(found)

    def _shown(
        self, key: ApiKey, records: Sequence[CheckRecord], payload: dict[str, Any] | None = None
    ) -> list[redaction.Shown]:
        """``records`` as ``key`` may see them (one rule per role:
        :mod:`screener.duties.redaction`);
        ``payload``, the audit payload of a single record, likewise."""
        owned: set[str] = set()
        if redaction.rule_for(key).own_works_only:
            named = set().union(*(redaction.mentioned_works(r, payload) for r in records))
            found = self.screener.catalog.works(sorted(named)) if named else {}
            owned = {w for w, work in found.items() if work.owner == key.owner}
        return [redaction.redact(key, r, payload, owned) for r in records]

    def _redact(self, record: CheckRecord, key: ApiKey) -> CheckRecord:
        return self._shown(key, [record])[0].record

    def get_check(self, key: ApiKey, check_id: str) -> CheckRecord:
        with Session(self.engine) as session:
            stored = check_record(self._check_row(session, key, check_id))
        return self._redact(stored, key)

    def list_checks(
        self,
        key: ApiKey,
        *,
        offset: int = 0,
        limit: int = 50,
        decision: str | None = None,
        rescreened: bool | None = None,
        takedown: bool | None = None,
    ) -> tuple[list[CheckRecord], int]:
        """Newest first: a platform's own checks, a rights holder's matches, or all.
        ``takedown``: only (or no) released outputs that a later notice matched (their
        ``action`` is ``take_down``)."""
        _page(offset, limit)
        query = select(CheckRow)
        if key.role == Role.PLATFORM:
            query = query.where(CheckRow.platform == key.owner)
        elif key.role == Role.RIGHTS_HOLDER:
            mine = select(CheckMatchRow.check_id).where(CheckMatchRow.owner == key.owner)
            query = query.where(CheckRow.id.in_(mine))
        if decision is not None:
            if decision not in {d.value for d in Decision}:
                raise InputError(f"decision must be one of {[d.value for d in Decision]}")
            query = query.where(CheckRow.decision == decision)
        if rescreened is not None:
            column = CheckRow.rescreen
            query = query.where(column.is_not(None) if rescreened else column.is_(None))
        if takedown is not None:
            to_take_down = (CheckRow.decision == Decision.ALLOW.value) & CheckRow.rescreen.is_not(
                None
            )
            query = query.where(to_take_down if takedown else ~to_take_down)
        with Session(self.engine) as session:
            total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
            rows = session.scalars(
                query.order_by(CheckRow.created_at.desc(), CheckRow.id).offset(offset).limit(limit)
            )
            records = [check_record(r) for r in rows]
        return [v.record for v in self._shown(key, records)], total

    def evidence(self, key: ApiKey, check_id: str) -> dict[str, Any]:
        """Everything needed to show what was decided, on what basis, and that the record
        has not changed since: the audit record with its place in the hash chain. Cut to
        what ``key`` may see by the same rule as :meth:`get_check`; ``redacted`` names
        every cut (the hashed payload itself is kept whole in the chain)."""
        with Session(self.engine) as session:
            stored = check_record(self._check_row(session, key, check_id))
        chain: dict[str, Any] | None = None
        payload: dict[str, Any] | None = None
        if stored.audit_seq is not None:
            entry = self.audit.get(stored.audit_seq)
            head = self.audit.head()
            payload = entry.payload
            chain = {
                "seq": entry.seq,
                "at": format_at(entry.at),
                "hash": entry.hash,
                "prev_hash": entry.prev_hash,
                "head_seq": head.seq,
                "head_hash": head.hash,
            }
        shown = self._shown(key, [stored], payload)[0]
        record = shown.record
        if chain is not None:
            chain["payload"] = shown.payload
        verdict = record.verdict
        return {
            "check_id": record.id,
            "input": verdict.get("input"),
            "decision": record.decision,
            "fused_score": record.fused_score,
            "top_work_id": record.top_work_id,
            "matches": verdict.get("matches", []),
            "licensed": verdict.get("licensed", []),
            "territory": verdict.get("territory"),  # None: checked for everywhere
            "outside_territory": verdict.get("outside_territory", []),
            "thresholds": verdict.get("thresholds"),
            "versions": {
                "policy": verdict.get("policy_version"),
                "index": verdict.get("index_version"),
                "models": verdict.get("models"),
                "signals_missing": verdict.get("signals_missing"),
            },
            "timestamps": {
                "checked_at": record.created_at,
                "audited_at": chain["at"] if chain else None,
            },
            "review": record.review,
            "rescreen": record.rescreen,
            "chain": chain,
            "redacted": list(shown.redacted),
        }

    def evidence_picture(
        self, key: ApiKey, check_id: str, work_id: str | None = None
    ) -> explain_mod.Picture:
        """The check's kept image with the matched region outlined beside the matched
        reference (``work_id``, default the check's top work), as drawn when the check was
        made: a later confirmation or notice that adds references changes nothing in it.

        For the platform that made the check and operators, like the kept image itself,
        and for a rights holder the picture of its own work's match only (default: its
        closest). Allowed checks keep no image, so they have no picture. Only works the
        check matched can be drawn (for a rights holder: its own among them): any other id
        gets the same :class:`NotFound` as a work that does not exist, so the picture shows
        no other work and tells nobody which work ids exist."""
        with Session(self.engine) as session:
            row = self._check_row(session, key, check_id)
            sha256, top, created = row.image_sha256, row.top_work_id, row.created_at
            matched = session.execute(
                select(CheckMatchRow.work_id, CheckMatchRow.owner)
                .where(CheckMatchRow.check_id == check_id)
                .order_by(CheckMatchRow.fused_score.desc(), CheckMatchRow.work_id)
            ).all()
        if sha256 is None:
            raise NotFound(
                f"check {quote(check_id)} kept no image (allowed outputs are not kept), "
                "so it has no evidence picture"
            )
        if key.role == Role.RIGHTS_HOLDER:
            drawable = [w for w, owner in matched if owner == key.owner]
            target = work_id if work_id is not None else (drawable[0] if drawable else None)
        else:
            drawable = [w for w, _ in matched] + ([top] if top is not None else [])
            target = work_id if work_id is not None else top
        if target is None:
            raise NotFound("no registered work resembles this image: nothing to explain")
        if target not in drawable:
            raise NotFound(f"no work {quote(target)}")
        return self._picture(check_id, target, sha256, created)

    def _picture(
        self, check_id: str, work_id: str, sha256: str, created: dt.datetime
    ) -> explain_mod.Picture:
        """The stored picture of (check, work); one drawn now and stored when there is none
        (a check made before pictures were stored, or a match past :data:`MAX_PICTURES`)."""
        with Session(self.engine) as session:
            stored = session.get(CheckPictureRow, (check_id, work_id))
            if stored is not None:
                return explain_mod.from_png(stored.png, work_id)
        picture = self.screener.explain(
            self.screener.catalog.blob(sha256), work_id, caption=_caption(check_id, created)
        )
        try:
            with Session(self.engine) as session, session.begin():
                session.add(CheckPictureRow(check_id=check_id, work_id=work_id, png=picture.png))
        except IntegrityError:  # drawn at the same time by another request: theirs stands
            return self._picture(check_id, work_id, sha256, created)
        return picture

    # works --------------------------------------------------------------------------------

    def _audited(
        self, key: ApiKey, action: str, subject: str, payload: dict[str, Any]
    ) -> Callable[..., None]:
        return self.audit.hook(key.id, action, subject, payload)

    def create_work(
        self,
        key: ApiKey,
        work_id: str,
        uploads: Sequence[Upload],
        *,
        title: str | None = None,
        aliases: Sequence[str] = (),
        owner: str | None = None,
        related_terms: Sequence[str] = (),
    ) -> Registered:
        """Register a new work. Work ids are one namespace shared by every owner (they key
        the indexes, verdicts and the audit chain), so a create must fail on any id already
        taken. It fails with one answer for every taken id, the caller's own works and
        other owners' alike (:func:`screener.store.catalog.unavailable`): it names no owner and
        says nothing else of the work, and ``GET /v1/works/{id}`` stays a 404 for works the
        caller may not read. That an id is taken is all anyone can learn, as with any name
        chosen by the caller in a shared namespace."""
        self.authorise_works(key)
        if key.role == Role.RIGHTS_HOLDER and owner not in (None, key.owner):
            raise Forbidden(f"key {key.id} registers works for {key.owner!r} only")
        if owner is not None and not is_plain_id(owner):
            raise InputError("owner must be 1-200 characters, without control characters")
        owner = owner or key.owner
        _text("title", title, 500)
        for alias in aliases:
            _text("alias", alias, 200)
        if len(aliases) > 100:
            raise InputError("at most 100 aliases")
        related = _terms("related term", related_terms)
        return self.screener.registry.register(
            work_id,
            [u.data for u in uploads],
            names=[u.name for u in uploads],
            title=title,
            owner=owner,
            aliases=aliases,
            related_terms=related,
            create_only=True,
            hook=self._audited(key, "work.create", work_id, {"title": title or work_id}),
        )

    def add_references(self, key: ApiKey, work_id: str, uploads: Sequence[Upload]) -> Registered:
        work = self._work_for(key, work_id, manage=True)
        return self.screener.registry.register(
            work_id,
            [u.data for u in uploads],
            names=[u.name for u in uploads],
            owner=work.owner,
            must_exist=True,
            hook=self._audited(key, "work.add_references", work_id, {}),
        )

    def get_work(self, key: ApiKey, work_id: str) -> WorkView:
        work = self._work_for(key, work_id)
        catalog = self.screener.catalog
        references = tuple(catalog.references(work_id))
        return WorkView(
            work,
            references,
            tuple(catalog.held(work_id=work_id)),
            self._origins(work_id, references),
        )

    def _origins(self, work_id: str, references: Sequence[Reference]) -> dict[int, Origin]:
        """Each reference's origin (``uploaded`` unless a review or notice added it)."""
        with Session(self.engine) as session:
            rows = session.scalars(
                select(ReferenceOriginRow).where(ReferenceOriginRow.work_id == work_id)
            ).all()
        found = {(r.reference_id, r.sha256): Origin(r.kind, r.source) for r in rows}
        return {r.id: found.get((r.id, r.sha256), Origin()) for r in references}

    # references held for an operator (see screener.matching.registrability) --------------

    def held_references(self, key: ApiKey) -> list[HeldReference]:
        """References waiting for an operator: all of them for operators, a rights
        holder's own (with why they wait) for a rights holder."""
        require_role(key, Role.RIGHTS_HOLDER, Role.OPERATOR, Role.ADMIN)
        owner = key.owner if key.role == Role.RIGHTS_HOLDER else None
        return self.screener.catalog.held(owner=owner)

    def _held(self, key: ApiKey, work_id: str, held_id: int) -> HeldReference:
        self._work_for(key, work_id)
        found = self.screener.catalog.held(work_id=work_id, held_id=held_id)
        if not found:
            raise NotFound(f"work {quote(work_id)} has no held reference {held_id}")
        return found[0]

    def held_image(self, key: ApiKey, work_id: str, held_id: int) -> bytes:
        """A held reference's bytes, for whoever may read its work."""
        return self.screener.catalog.blob(self._held(key, work_id, held_id).sha256)

    def approve_held(self, key: ApiKey, work_id: str, held_id: int, note: str = "") -> Registered:
        """An operator judges a held reference to be the work's own: it is fingerprinted and
        screened against from now on."""
        require_role(key, Role.OPERATOR, Role.ADMIN)
        note = _text("note", note) or ""
        held = self._held(key, work_id, held_id)
        payload = {"held_id": held_id, "sha256": held.sha256, "findings": list(held.findings)}
        return self.screener.registry.approve(
            work_id,
            held_id,
            self._audited(key, "work.approve_reference", work_id, {**payload, "note": note}),
        )

    def reject_held(self, key: ApiKey, work_id: str, held_id: int, note: str = "") -> None:
        """An operator refuses a held reference: it never becomes part of the work."""
        require_role(key, Role.OPERATOR, Role.ADMIN)
        note = _text("note", note) or ""
        held = self._held(key, work_id, held_id)
        payload = {"held_id": held_id, "sha256": held.sha256, "findings": list(held.findings)}
        self.screener.registry.reject(
            work_id,
            held_id,
            self._audited(key, "work.reject_reference", work_id, {**payload, "note": note}),
        )

    def list_works(self, key: ApiKey, offset: int = 0, limit: int = 50) -> tuple[list[Work], int]:
        require_role(key, Role.RIGHTS_HOLDER, Role.OPERATOR, Role.ADMIN)
        _page(offset, limit)
        owner = key.owner if key.role == Role.RIGHTS_HOLDER else None
        catalog = self.screener.catalog
        return catalog.list_works(offset, limit, owner=owner), catalog.count_works(owner)

    def delete_work(self, key: ApiKey, work_id: str) -> int:
        self._work_for(key, work_id, manage=True)
        return self.screener.registry.remove(
            work_id, self._audited(key, "work.delete", work_id, {})
        )

    def withdraw_confirmed(self, key: ApiKey, check_id: str, appeal_id: str) -> list[int]:
        """Remove the references a reviewer's confirmation of ``check_id`` added to works
        (the output itself), once an appeal has overturned that check: a false positive
        must not go on blocking outputs like it. Each removal is audited. Returns the ids."""
        require_role(key, Role.OPERATOR, Role.ADMIN)
        with Session(self.engine) as session:
            found = [
                (row.work_id, row.reference_id, row.sha256)
                for row in session.scalars(
                    select(ReferenceOriginRow).where(
                        ReferenceOriginRow.kind == "review", ReferenceOriginRow.source == check_id
                    )
                )
            ]
            still = {
                (ref.work_id, ref.id)
                for ref in session.scalars(
                    select(ReferenceRow).where(
                        ReferenceRow.id.in_([rid for _, rid, _ in found]),
                        ReferenceRow.sha256.in_([sha for _, _, sha in found]),
                    )
                )
            }
        removed: list[int] = []
        for work_id, reference_id, _ in found:
            if (work_id, reference_id) not in still:
                continue  # removed already (by hand, or by an earlier try)
            payload = {"reference_id": reference_id, "check_id": check_id, "appeal_id": appeal_id}
            self.screener.registry.remove_reference(
                work_id, reference_id, self._audited(key, "work.remove_reference", work_id, payload)
            )
            removed.append(reference_id)
        return removed

    def remove_reference(self, key: ApiKey, work_id: str, reference_id: int) -> int:
        self._work_for(key, work_id, manage=True)
        return self.screener.registry.remove_reference(
            work_id,
            reference_id,
            self._audited(key, "work.remove_reference", work_id, {"reference_id": reference_id}),
        )

    def set_licensees(self, key: ApiKey, work_id: str, licensees: Sequence[str]) -> Work:
        """The platform owners allowed to publish the work (replaces the list)."""
        self._work_for(key, work_id, manage=True)
        if len(licensees) > 1000:
            raise InputError("at most 1000 licensees")
        for name in licensees:
            if not name or _text("licensee", name, 200) is None:
                raise InputError("a licensee must be a non-empty owner name")
        return self.screener.catalog.update_work(
            work_id,
            licensees=licensees,
            hook=self._audited(
                key, "work.licensees", work_id, {"licensees": list(dict.fromkeys(licensees))}
            ),
        )

    def set_thresholds(
        self, key: ApiKey, work_id: str, thresholds: dict[str, float] | None
    ) -> Work:
        """A work's own review/block bands (operators only: bands are policy), or None to
        return to the policy's. A band left out takes the policy's value now, and both are
        stored, so a later policy change cannot turn the pair upside down."""
        require_role(key, Role.OPERATOR, Role.ADMIN)
        work = self._work_for(key, work_id, manage=True)
        if thresholds is not None:
            base = self.screener.policy.bands_for(work_id)
            checked = policy_mod.bands(
                review=thresholds.get("review", base.review),
                block=thresholds.get("block", base.block),
            )
            thresholds = {"review": checked.review, "block": checked.block}
        return self.screener.catalog.update_work(
            work.id,
            thresholds=thresholds,
            hook=self._audited(key, "work.thresholds", work_id, {"thresholds": thresholds}),
        )

    # notices ------------------------------------------------------------------------------

    def file_notice(
        self,
        key: ApiKey,
        work_id: str,
        *,
        uploads: Sequence[Upload] = (),
        check_ids: Sequence[str] = (),
        outputs: Sequence[Upload] = (),
        title: str | None = None,
        description: str = "",
    ) -> Notice:
        """Record a rights holder's notice, then take the measures at once: the images join
        the work's references and every allowed output is re-screened against the work.
        ``outputs``: images of released outputs complained of; the service finds their
        checks (:mod:`screener.matching.outputs`) and names them in the notice."""
        self.authorise_works(key)
        description = _text("description", description) or ""
        if len(check_ids) > MAX_NAMED_CHECKS:
            raise InputError(f"a notice names at most {MAX_NAMED_CHECKS} checks")
        for check_id in check_ids:
            _text("check id", check_id, 40)
        check_work_id(work_id)
        existing = self.screener.catalog.works([work_id]).get(work_id)
        if existing is not None and not can_manage_work(key, existing.owner):
            # Another owner's work is answered as for a work id not registered, and as a
            # create is: a notice tells nobody whose the id is.
            if uploads:
                raise Conflict(unavailable(work_id))
            existing = None
        if existing is None and not uploads:
            raise InputError(
                f"work {quote(work_id)} is not registered: a notice for a new work needs its "
                "reference images"
            )
        stored = []
        for upload in uploads:  # refuse bad or unregistrable images before anything is recorded
            decoded = self.screener.registry.check_content(upload.data, upload.name)
            stored.append((decoded.sha256, upload))
        found = self.find_outputs(outputs)
        by_image = [c for ids in found.values() for c in ids]
        check_ids = list(dict.fromkeys([*check_ids, *by_image]))
        if len(check_ids) > MAX_NAMED_CHECKS:
            raise InputError(f"a notice names at most {MAX_NAMED_CHECKS} checks")
        owner = existing.owner if existing is not None else key.owner
        notice_id = new_id("ntc")
        with Session(self.engine) as session, session.begin():
            self.audit.lock(session)
            at = now()
            for sha256, upload in stored:
                if session.get(BlobRow, sha256) is None:
                    session.add(BlobRow(sha256=sha256, data=upload.data))
                    session.flush()
            session.add(
                NoticeRow(
                    id=notice_id,
                    created_at=at,
                    updated_at=at,
                    owner=owner,
                    filed_by=key.id,
                    work_id=work_id,
                    new_work=existing is None,
                    description=description,
                    check_ids=list(dict.fromkeys(check_ids)),
                    images=[[sha256, upload.name] for sha256, upload in stored],
                    title=title,
                    status="received",
                    history=[
                        {
                            "status": "received",
                            "at": at.isoformat(),
                            "by": key.id,
                            **({"found_by_image": found} if outputs else {}),
                        }
                    ],
                )
            )
            session.flush()
            self.audit.append_in(
                session,
                key.id,
                "notice.file",
                notice_id,
                {
                    "work_id": work_id,
                    "owner": owner,
                    "check_ids": list(check_ids),
                    "images": [sha256 for sha256, _ in stored],
                    **({"found_by_image": found} if outputs else {}),
                },
            )
        return self._notice_for(key, self._take_measures(key.id, notice_id))

    def find_outputs(self, outputs: Sequence[Upload]) -> dict[str, list[str]]:
        """The released (allowed) checks whose image is each of ``outputs`` (by name):
        the same bytes, or the same image by the policy's ramps
        (:mod:`screener.matching.outputs`)."""
        if not outputs:
            return {}
        if len(outputs) > MAX_NAMED_CHECKS:
            raise InputError(f"a notice names at most {MAX_NAMED_CHECKS} outputs")
        prepared = []
        for upload in outputs:
            ready = self.screener.prepare(CheckItem(upload.data))
            if isinstance(ready, InputError):
                raise type(ready)(f"{upload.name}: {ready}")
            prepared.append(ready)
        queries = [
            outputs_mod.whole(fps)
            for fps in self.screener.fingerprint_many([p.decoded.image for p in prepared])
        ]
        kinds = {n: f.kind for n, f in self.screener.signals.available.items()}
        policy = self.screener.policy
        found: dict[str, list[str]] = {self._output_name(u, outputs): [] for u in outputs}
        names = list(found)
        with Session(self.engine) as session:
            for name, ready in zip(names, prepared, strict=True):
                found[name].extend(self._same_bytes(session, ready))
        for batch in self._allowed_checks(rescreened=True):
            for check_id, _, query in batch:
                stored = outputs_mod.whole(query)
                for name, mine in zip(names, queries, strict=True):
                    if check_id not in found[name] and outputs_mod.same_output(
                        mine, stored, kinds, policy
                    ):
                        found[name].append(check_id)
        return found

    @staticmethod
    def _output_name(upload: Upload, outputs: Sequence[Upload]) -> str:
        same = [u for u in outputs if u.name == upload.name]
        return upload.name if len(same) == 1 else f"{upload.name} #{outputs.index(upload) + 1}"

    @staticmethod
    def _same_bytes(session: Session, ready: Prepared) -> list[str]:
        return list(
            session.scalars(
                select(CheckRow.id)
                .where(
                    CheckRow.input_sha256 == ready.decoded.sha256,
                    CheckRow.decision == Decision.ALLOW.value,
                )
                .order_by(CheckRow.id)
            )
        )

    def resume_notices(self) -> list[Notice]:
        """Take the measures of notices recorded but not acted on (a crash in between)."""
        with Session(self.engine) as session:
            waiting = list(
                session.scalars(select(NoticeRow.id).where(NoticeRow.status == "received"))
            )
        return [self._take_measures("service", notice_id) for notice_id in waiting]

    def _take_measures(self, actor: str, notice_id: str) -> Notice:
        with Session(self.engine) as session:
            row = session.get(NoticeRow, notice_id)
            assert row is not None
            work_id, named, title = row.work_id, list(row.check_ids), row.title
            by_image = (row.history[0] if row.history else {}).get("found_by_image")
            images = [(sha256, name) for sha256, name in row.images or []]
            owner = row.owner
        catalog = self.screener.catalog
        exists = work_id in catalog.works([work_id])
        added: list[int] = []
        skipped = 0
        if images:
            registered = self.screener.registry.register(
                work_id,
                [catalog.blob(sha256) for sha256, _ in images],
                names=[name for _, name in images],
                title=title,
                owner=owner,
                must_exist=exists,
                hook=_with_origins(
                    self.audit.hook(actor, "notice.references", work_id, {"notice_id": notice_id}),
                    "notice",
                    notice_id,
                ),
            )
            added, skipped = list(registered.added_references), registered.skipped
        affected = self.rescreen(work_id, notice_id)
        named_status = self._named_checks(named, affected, owner)
        at = now()
        measures = {
            "at": at.isoformat(),
            "references_added": added,
            "references_already_registered": skipped,
            "rescreened_checks": affected["rescreened"],
            "affected_check_ids": [a["check_id"] for a in affected["affected"]],
            "affected": affected["affected"],
            "named_checks": named_status,
            **({"found_by_image": by_image} if by_image is not None else {}),
        }
        with Session(self.engine) as session, session.begin():
            self.audit.lock(session)
            row = session.get(NoticeRow, notice_id)
            assert row is not None
            row.status = "measures_taken"
            row.updated_at = at
            row.measures = measures
            row.history = [
                *row.history,
                {"status": "measures_taken", "at": at.isoformat(), "by": "service"},
            ]
            self.audit.append_in(
                session,
                actor,
                "notice.measures_taken",
                notice_id,
                {k: v for k, v in measures.items() if k != "affected"},
            )
            session.flush()
            return notice(row)

    def _named_checks(
        self, named: list[str], affected: dict[str, Any], owner: str
    ) -> dict[str, str]:
        """What became of each output the notice named. An output that matched none of the
        ``owner``'s works, then or now, is ``unknown`` like an id that names nothing: a
        notice learns nothing of other platforms' checks."""
        hit = {a["check_id"] for a in affected["affected"]}
        status: dict[str, str] = {}
        with Session(self.engine) as session:
            for check_id in named:
                row = session.get(CheckRow, check_id)
                seen = check_id in hit or self._matched_owner(session, check_id, owner)
                if row is None or not seen:
                    status[check_id] = "unknown"
                elif check_id in hit:
                    status[check_id] = "matches_now"
                elif row.decision != Decision.ALLOW.value:
                    status[check_id] = f"already_{row.decision}"
                elif row.rescreen is not None:
                    status[check_id] = "matched_earlier_notice"
                else:
                    status[check_id] = "no_match"
        return status

    def rescreen(self, work_id: str, notice_id: str) -> dict[str, Any]:
        """Re-score every allowed, not yet re-screened output against ``work_id`` with the
        current references; mark and list those that now match."""
        affected: list[dict[str, Any]] = []
        count = 0
        for batch in self._allowed_checks():
            scored = self.screener.rescore_many([(q, p) for _, p, q in batch], work_id)
            for (check_id, platform, _), matches in zip(batch, scored, strict=True):
                count += 1
                top = matches[0] if matches else None
                if top is None or top.licensed or top.decision == Decision.ALLOW.value:
                    continue
                affected.append(
                    {
                        "check_id": check_id,
                        "platform": platform,
                        "decision": top.decision,
                        "fused_score": top.fused_score,
                    }
                )
        if affected:
            at = now().isoformat()
            with Session(self.engine) as session, session.begin():
                for item in affected:
                    session.execute(
                        update(CheckRow)
                        .where(CheckRow.id == item["check_id"])
                        .values(
                            rescreen={
                                "notice_id": notice_id,
                                "work_id": work_id,
                                "decision": item["decision"],
                                "fused_score": item["fused_score"],
                                "at": at,
                            }
                        )
                    )
        return {"rescreened": count, "affected": affected}

    def _allowed_checks(
        self, *, rescreened: bool = False
    ) -> Iterator[list[tuple[str, str, list[RegionFingerprint]]]]:
        """Allowed checks with their stored fingerprints, a batch at a time (those an
        earlier notice re-screened too, with ``rescreened``)."""
        specs = self.screener.signals.specs
        kinds = {n: f.kind for n, f in self.screener.signals.available.items()}
        after = ""
        while True:
            with Session(self.engine) as session:
                rows = session.execute(
                    select(CheckRow.id, CheckRow.platform)
                    .where(
                        CheckRow.decision == Decision.ALLOW.value,
                        CheckRow.rescreen.is_(None) if not rescreened else CheckRow.id.is_not(None),
                        CheckRow.id > after,
                    )
                    .order_by(CheckRow.id)
                    .limit(_RESCREEN_BATCH)
                ).all()
                if not rows:
                    return
                after = rows[-1][0]
                queries: dict[str, list[RegionFingerprint]] = {r[0]: [] for r in rows}
                for fp in session.scalars(
                    select(CheckFingerprintRow).where(CheckFingerprintRow.check_id.in_(queries))
                ):
                    if specs.get(fp.signal) != fp.spec_id:  # made by another model version
                        continue
                    binary = kinds[fp.signal] == "binary"
                    queries[fp.check_id].append(
                        from_stored(fp.signal, fp.region, fp.vector, fp.quality, binary)
                    )
            yield [(cid, platform, queries[cid]) for cid, platform in rows if queries[cid]]

    def _notice_row(self, session: Session, key: ApiKey, notice_id: str) -> NoticeRow:
        row = session.get(NoticeRow, notice_id) if is_plain_id(notice_id, 40) else None
        if row is None or not (
            key.role in (Role.OPERATOR, Role.ADMIN)
            or (key.role == Role.RIGHTS_HOLDER and row.owner == key.owner)
        ):
            raise NotFound(f"no notice {quote(notice_id)}")
        return row

    def _notice_for(self, key: ApiKey, item: Notice) -> Notice:
        """``item`` as ``key`` may see it (:func:`redaction.redact_notice`), with the checks
        found by image that ``key`` may open."""
        found = redaction.found_by_image(item)
        own = redaction.rule_for(key).own_works_only
        readable = self.readable_checks(key, sorted(found)) if own and found else set()
        return redaction.redact_notice(key, item, readable)

    def get_notice(self, key: ApiKey, notice_id: str) -> Notice:
        with Session(self.engine) as session:
            found = notice(self._notice_row(session, key, notice_id))
        return self._notice_for(key, found)

    def list_notices(
        self, key: ApiKey, *, offset: int = 0, limit: int = 50, status: str | None = None
    ) -> tuple[list[Notice], int]:
        require_role(key, Role.RIGHTS_HOLDER, Role.OPERATOR, Role.ADMIN)
        _page(offset, limit)
        query = select(NoticeRow)
        if key.role == Role.RIGHTS_HOLDER:
            query = query.where(NoticeRow.owner == key.owner)
        if status is not None:
            query = query.where(NoticeRow.status == status)
        with Session(self.engine) as session:
            total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
            rows = session.scalars(
                query.order_by(NoticeRow.created_at.desc(), NoticeRow.id)
                .offset(offset)
                .limit(limit)
            )
            items = [notice(r) for r in rows]
        return [self._notice_for(key, n) for n in items], total

    def reject_notice(self, key: ApiKey, notice_id: str, reason: str) -> Notice:
        """An operator rejects a notice: the references it added are removed again."""
        require_role(key, Role.OPERATOR, Role.ADMIN)
        reason = _text("reason", reason) or ""
        if not reason.strip():
            raise InputError("rejecting a notice needs a reason")
        with Session(self.engine) as session:
            row = self._notice_row(session, key, notice_id)
            if row.status == "rejected":
                raise Conflict(f"notice {notice_id} is already rejected")
            work_id = row.work_id
            added = list((row.measures or {}).get("references_added", []))
        removed = 0
        for reference_id in added:
            try:
                removed += self.screener.registry.remove_reference(
                    work_id,
                    reference_id,
                    self._audited(
                        key,
                        "notice.references_removed",
                        work_id,
                        {"notice_id": notice_id, "reference_id": reference_id},
                    ),
                )
            except NotFound:  # removed since by its owner
                continue
        at = now()
        with Session(self.engine) as session, session.begin():
            self.audit.lock(session)
            row = self._notice_row(session, key, notice_id)
            row.status = "rejected"
            row.reason = reason
            row.updated_at = at
            row.history = [
                *row.history,
                {"status": "rejected", "at": at.isoformat(), "by": key.id, "reason": reason},
            ]
            self.audit.append_in(
                session,
                key.id,
                "notice.reject",
                notice_id,
                {"reason": reason, "references_removed": added, "fingerprints_removed": removed},
            )
            session.flush()
            return notice(row)

    # review -------------------------------------------------------------------------------

    def review_queue(
        self, key: ApiKey, *, offset: int = 0, limit: int = 50, status: str = "pending"
    ) -> tuple[list[CheckRecord], int]:
        """Checks decided ``review``, oldest first (``status``: pending, confirmed,
        rejected; the rejected ones are the false positives for threshold tuning)."""
        require_role(key, Role.OPERATOR, Role.ADMIN)
        _page(offset, limit)
        if status not in ("pending", "confirmed", "rejected"):
            raise InputError("status must be pending, confirmed or rejected")
        query = select(CheckRow).where(CheckRow.review_status == status)
        with Session(self.engine) as session:
            total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
            rows = session.scalars(
                query.order_by(CheckRow.created_at, CheckRow.id).offset(offset).limit(limit)
            )
            return [check_record(r) for r in rows], total

    def _pending(self, session: Session, check_id: str) -> CheckRow:
        row = session.get(CheckRow, check_id) if is_plain_id(check_id, 40) else None
        if row is None or row.review_status is None:
            raise NotFound(f"no check {quote(check_id)} in the review queue")
        if row.review_status != "pending":
            raise Conflict(f"check {check_id} was already {row.review_status}")
        return row

    def confirm_review(
        self, key: ApiKey, check_id: str, work_id: str | None = None, note: str = ""
    ) -> CheckRecord:
        """A reviewer confirms a copy: the output joins the work's references, so the next
        output like it is caught without review."""
        require_role(key, Role.OPERATOR, Role.ADMIN)
        note = _text("note", note) or ""
        with Session(self.engine) as session:
            row = self._pending(session, check_id)
            target = work_id or row.top_work_id
            image_sha256, created = row.image_sha256, row.created_at
            matched = set(
                session.scalars(
                    select(CheckMatchRow.work_id).where(CheckMatchRow.check_id == check_id)
                )
            )
        if target is None or image_sha256 is None:
            raise InputError(f"check {check_id}: name the work it copies")
        self.screener.catalog.get_work(target)
        data = self.screener.catalog.blob(image_sha256)
        # The evidence as decided on, before the output becomes one of the work's references.
        for shown in sorted(matched | {target}):
            try:
                self._picture(check_id, shown, image_sha256, created)
            except NotFound:
                continue

        def hook(session: Session, work: Work, added: list[int], _held: list[int]) -> None:
            self.audit.lock(session)
            row = self._pending(session, check_id)
            row.review_status = "confirmed"
            row.review = {
                "by": key.id,
                "at": now().isoformat(),
                "work_id": target,
                "note": note,
                "references_added": added,
            }
            self.audit.append_in(
                session,
                key.id,
                "review.confirm",
                check_id,
                {"work_id": work.id, "note": note, "references_added": added},
            )
            _record_origins(session, work.id, added, "review", check_id)

        self.screener.registry.register(
            target, [data], names=[f"review-{check_id}"], must_exist=True, hook=hook
        )
        return self.get_check(key, check_id)

    def reject_review(self, key: ApiKey, check_id: str, note: str = "") -> CheckRecord:
        """A reviewer rejects: recorded as a false positive, with its evidence, for tuning."""
        require_role(key, Role.OPERATOR, Role.ADMIN)
        note = _text("note", note) or ""
        with Session(self.engine) as session, session.begin():
            self.audit.lock(session)
            row = self._pending(session, check_id)
            row.review_status = "rejected"
            row.review = {"by": key.id, "at": now().isoformat(), "note": note}
            self.audit.append_in(
                session,
                key.id,
                "review.reject",
                check_id,
                {"note": note, "top_work_id": row.top_work_id, "fused_score": row.fused_score},
            )
            session.flush()
            return check_record(row)

    # audit, policy, keys ------------------------------------------------------------------

    def audit_records(self, key: ApiKey, after: int = 0, limit: int = 100) -> list[AuditRecord]:
        require_role(key, Role.OPERATOR, Role.ADMIN)
        return self.audit.records(after, limit)

    def audit_verify(self, key: ApiKey) -> VerifyReport:
        require_role(key, Role.OPERATOR, Role.ADMIN)
        return self.audit.verify()

    def policy(self, key: ApiKey) -> dict[str, Any]:
        require_role(key, Role.OPERATOR, Role.ADMIN)
        return self.screener.policy.to_dict()

    def create_key(
        self, key: ApiKey, role: str, owner: str, description: str = ""
    ) -> tuple[ApiKey, str]:
        require_role(key, Role.ADMIN)
        return self.keys.create(role, owner, description, actor=key.id)

    def list_keys(self, key: ApiKey, owner: str | None = None) -> list[ApiKey]:
        require_role(key, Role.ADMIN)
        return self.keys.list(owner)

    def revoke_key(self, key: ApiKey, key_id: str) -> ApiKey:
        require_role(key, Role.ADMIN)
        return self.keys.revoke(key_id, actor=key.id)

    def set_display_name(self, key: ApiKey, owner: str, display_name: str) -> str:
        """The name risk prompts give ``owner`` (empty: its account name again): operators
        and admins for any owner, anyone else for its own."""
        if key.role not in (Role.OPERATOR, Role.ADMIN) and owner != key.owner:
            raise Forbidden(f"key {key.id} names {key.owner!r} only")
        display_name = _text("display name", display_name, 200) or ""
        return self.keys.set_display_name(owner, display_name, actor=key.id)

    def display_name(self, key: ApiKey, owner: str) -> str:
        """``owner``'s display name (its account name where none is set)."""
        if key.role not in (Role.OPERATOR, Role.ADMIN) and owner != key.owner:
            raise Forbidden(f"key {key.id} names {key.owner!r} only")
        return self.keys.display_names([owner]).get(owner, owner)

    # labels -------------------------------------------------------------------------------

    def label(
        self,
        key: ApiKey,
        data: bytes,
        label: labels_mod.Label,
        *,
        visible: bool = False,
        visible_text: str | None = None,
    ) -> labels_mod.Labelled:
        require_role(key, Role.PLATFORM, Role.OPERATOR, Role.ADMIN)
        return labels_mod.apply(
            data,
            label,
            visible=visible or visible_text is not None,
            visible_text=visible_text,
            limits=self.screener.limits,
        )

    def record_label(
        self,
        key: ApiKey,
        source: bytes,
        labelled: bytes,
        label: labels_mod.Label,
        *,
        visible: bool,
        c2pa: bool,
        check_id: str | None,
    ) -> None:
        """Audit a label written (``label.apply``): what came in, what went out, and whether
        the operator's certificate signed it, so a credential found later can be traced."""
        self.audit.append(
            key.id,
            "label.apply",
            hashlib.sha256(labelled).hexdigest(),
            {
                "input_sha256": hashlib.sha256(source).hexdigest(),
                "provider": label.provider,
                "content_id": label.content_id,
                "visible": visible,
                "c2pa": c2pa,
                "check_id": check_id,
            },
        )

    def read_label(self, key: ApiKey, data: bytes) -> labels_mod.Label | None:
        require_role(key, Role.PLATFORM, Role.RIGHTS_HOLDER, Role.OPERATOR, Role.ADMIN)
        return labels_mod.read(data, limits=self.screener.limits)

    # console: editing works, images, searching checks, dashboard, policy changes -----------

    def update_work(
        self,
        key: ApiKey,
        work_id: str,
        *,
        title: str | None = None,
        aliases: Sequence[str] | None = None,
        related_terms: Sequence[str] | None = None,
    ) -> Work:
        """Change a work's title, aliases and related terms (any script); left-out ones
        stay."""
        work = self._work_for(key, work_id, manage=True)
        if title is not None:
            title = (_text("title", title, 500) or "").strip()
            if not title:
                raise InputError("title must not be empty")
        cleaned: list[str] | None = None
        if aliases is not None:
            cleaned = list(dict.fromkeys(a.strip() for a in aliases if a.strip()))
            for alias in cleaned:
                _text("alias", alias, 200)
            if len(cleaned) > 100:
                raise InputError("at most 100 aliases")
        related = None if related_terms is None else _terms("related term", related_terms)
        changes = {"title": title, "aliases": cleaned}
        if related is not None:
            changes["related_terms"] = related
        return self.screener.catalog.update_work(
            work.id,
            title=title,
            aliases=cleaned,
            related_terms=related,
            hook=self._audited(key, "work.update", work_id, changes),
        )

    def check_image(self, key: ApiKey, check_id: str) -> bytes:
        """The image a review or block kept, for the platform that sent it and operators."""
        with Session(self.engine) as session:
            row = self._check_row(session, key, check_id)
            sha256 = row.image_sha256
        if key.role == Role.RIGHTS_HOLDER or sha256 is None:
            raise NotFound(f"no image kept for check {quote(check_id)}")
        return self.screener.catalog.blob(sha256)

    def reference_image(self, key: ApiKey, work_id: str, reference_id: int) -> bytes:
        """A reference image's bytes as registered, for whoever may read the work."""
        self._work_for(key, work_id)
        for reference in self.screener.catalog.references(work_id):
            if reference.id == reference_id:
                return self.screener.catalog.blob(reference.sha256)
        raise NotFound(f"no reference {reference_id} of work {quote(work_id)}")

    def find_checks(
        self,
        key: ApiKey,
        *,
        offset: int = 0,
        limit: int = 50,
        decision: str | None = None,
        work_id: str | None = None,
        platform: str | None = None,
        since: dt.date | None = None,
        until: dt.date | None = None,
    ) -> tuple[list[CheckRecord], int]:
        """Checks newest first, by decision, matched work, platform and UTC date range
        (both ends included), within what the key may see (as :meth:`list_checks`)."""
        _page(offset, limit)
        query = select(CheckRow)
        if key.role == Role.PLATFORM:
            if platform not in (None, key.owner):
                return [], 0
            query = query.where(CheckRow.platform == key.owner)
        elif key.role == Role.RIGHTS_HOLDER:
            mine = select(CheckMatchRow.check_id).where(CheckMatchRow.owner == key.owner)
            query = query.where(CheckRow.id.in_(mine))
        else:
            require_role(key, Role.OPERATOR, Role.ADMIN)
        if decision is not None:
            if decision not in {d.value for d in Decision}:
                raise InputError(f"decision must be one of {[d.value for d in Decision]}")
            query = query.where(CheckRow.decision == decision)
        if work_id is not None:
            if key.role == Role.PLATFORM:
                raise Forbidden("platforms search their checks without naming works")
            self._work_for(key, work_id)
            matched = select(CheckMatchRow.check_id).where(CheckMatchRow.work_id == work_id)
            query = query.where(CheckRow.id.in_(matched))
        if platform is not None:
            _text("platform", platform, 200)
            query = query.where(CheckRow.platform == platform)
        if since is not None and until is not None and until < since:
            raise InputError("the end date is before the start date")
        if since is not None:
            query = query.where(
                CheckRow.created_at >= dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
            )
        if until is not None:
            end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
            query = query.where(CheckRow.created_at < end)
        with Session(self.engine) as session:
            total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
            rows = session.scalars(
                query.order_by(CheckRow.created_at.desc(), CheckRow.id).offset(offset).limit(limit)
            )
            records = [check_record(r) for r in rows]
        return [v.record for v in self._shown(key, records)], total

    def dashboard(self, key: ApiKey, days: int = 14) -> dict[str, Any]:
        """Checks per decision per day, top matched works, review backlog, index sizes,
        model and policy versions."""
        require_role(key, Role.OPERATOR, Role.ADMIN)
        counts = stats.dashboard(self.engine, days)
        screener = self.screener
        return {
            "counts": counts,
            "index_sizes": screener.indexes.sizes(),
            "index_version": screener.index_version(),
            "models": screener.model_specs,
            "signals_missing": dict(screener.signals.missing),
            "policy_version": screener.policy.version,
            "works": screener.catalog.count_works(),
        }

    def preview_policy(self, key: ApiKey, data: bytes | str) -> Any:
        """Validate an uploaded policy and compare it with the one in force; nothing
        changes. Returns a :class:`screener.store.policy_store.PolicyPreview`."""
        require_role(key, Role.OPERATOR, Role.ADMIN)
        proposed, text = policies.read(data)
        current = self.screener.policy
        problem = policies.runtime_problem(current, proposed)
        if problem is not None:
            raise PolicyError(f"the uploaded policy cannot be put into force: {problem}")
        return policies.PolicyPreview(current, proposed, policies.compare(current, proposed), text)

    def replace_policy(self, key: ApiKey, data: bytes | str, based_on: str) -> Policy:
        """Put a previewed policy into force. ``based_on`` is the version the operator
        compared it with: if another change came first, this one is refused."""
        preview = self.preview_policy(key, data)
        if preview.current.version != based_on:
            raise Conflict(
                f"the policy in force changed to {preview.current.version!r} since the "
                f"comparison with {based_on!r}: upload it again to compare"
            )
        ensure_tables(self.engine, policies.POLICY_TABLES)
        with Session(self.engine) as session, session.begin():
            self.audit.lock(session)
            session.add(
                policies.PolicyVersionRow(
                    at=now(),
                    actor=key.id,
                    version=preview.proposed.version,
                    replaced_version=based_on,
                    text=preview.text,
                )
            )
            self.audit.append_in(
                session,
                key.id,
                "policy.replace",
                preview.proposed.version,
                {
                    "replaced": based_on,
                    "changes": [
                        {"path": c.path, "before": c.before, "after": c.after}
                        for c in preview.changes
                    ],
                },
            )
        self.screener.policy = preview.proposed
        proposed: Policy = preview.proposed
        return proposed

    def restore_policy(self) -> Policy | None:
        """At start: the policy last put into force from the console, if the configured
        policy is still the one it replaced (else the configured file is newer and wins)."""
        ensure_tables(self.engine, policies.POLICY_TABLES)
        with Session(self.engine) as session:
            latest = session.scalars(
                select(policies.PolicyVersionRow)
                .order_by(policies.PolicyVersionRow.seq.desc())
                .limit(1)
            ).first()
            if latest is None:
                return None
            stored = latest.text
            chain = set(session.scalars(select(policies.PolicyVersionRow.replaced_version)))
        if self.screener.policy.version not in chain:
            return None
        restored, _ = policies.read(stored, "the stored policy")
        self.screener.policy = restored
        return restored

    def risk_prompt_of(self, key: ApiKey, check_id: str) -> dict[str, str] | None:
        """The risk prompt the check's end user was shown (None for allow)."""
        from screener.core.replay import verdict_from_dict

        return self._risk_prompt(verdict_from_dict(self.get_check(key, check_id).verdict))


def _caption(check_id: str, created: dt.datetime) -> list[str]:
    return [f"check {check_id}  {iso(created)}"]


def _record_origins(
    session: Session, work_id: str, added: Sequence[int], kind: str, source: str
) -> None:
    """Note, in the registering transaction, where the references just added came from."""
    for reference_id in added:
        reference = session.get(ReferenceRow, reference_id)
        if reference is not None:
            session.merge(
                ReferenceOriginRow(
                    reference_id=reference_id,
                    sha256=reference.sha256,
                    work_id=work_id,
                    kind=kind,
                    source=source,
                )
            )


def _with_origins(hook: Callable[..., None], kind: str, source: str) -> RegisterHook:
    def both(session: Session, work: Work, added: list[int], held: list[int]) -> None:
        hook(session, work, added, held)
        _record_origins(session, work.id, added, kind, source)

    return both
