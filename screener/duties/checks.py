"""Checks: screening images and prompts, recording each with its audit record, who may
read which check, and the evidence behind it."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from screener.core.errors import InputError, NotFound, is_plain_id, quote
from screener.core.policy import Decision
from screener.core.prompt.result import PromptResult
from screener.core.risk import risk_prompt
from screener.core.verdict import Verdict
from screener.duties import redaction
from screener.duties.base import DeskBase, Upload, _page, _text
from screener.matching import explain
from screener.matching.pipeline import Analysis, CheckItem
from screener.matching.signals import vector_bytes
from screener.store.audit import format_at
from screener.store.catalog import BlobRow
from screener.store.check_records import (
    CheckFingerprintRow,
    CheckMatchRow,
    CheckPictureRow,
    CheckRecord,
    CheckRow,
    action_of,
    check_record,
    iso,
    new_id,
    now,
)
from screener.store.keys import ApiKey, Role, require_role

# Evidence pictures drawn with a held check, from its own analysis (more matched works, a
# rare case, are drawn when first asked for and kept from then on).
MAX_PICTURES = 5


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


class CheckDuties(DeskBase):
    """Image and prompt checks, and who may read which (with its evidence)."""

    @staticmethod
    def authorise_check(key: ApiKey) -> None:
        require_role(key, Role.PLATFORM, Role.OPERATOR)

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
        if verdict.decision == Decision.ALLOW.value:
            self.checks_stored()
        return CheckOutcome(check_id, verdict, self._risk_prompt(verdict), record.seq)

    def checks_stored(self) -> None:
        """Called after an allowed check's fingerprints are stored (the notices' index
        catches up with them: :class:`screener.duties.jobs.JobDuties`)."""

    def _risk_prompt(self, verdict: Verdict) -> dict[str, str] | None:
        top = verdict.top_match
        names = self.keys.display_names([top.owner] if top is not None and top.owner else [])
        return risk_prompt(verdict, names)

    def _draw_pictures(
        self, check_id: str, created: dt.datetime, data: bytes, analysis: Analysis
    ) -> list[explain.Picture]:
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
    ) -> explain.Picture:
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
    ) -> explain.Picture:
        """The stored picture of (check, work); one drawn now and stored when there is none
        (a check made before pictures were stored, or a match past :data:`MAX_PICTURES`)."""
        with Session(self.engine) as session:
            stored = session.get(CheckPictureRow, (check_id, work_id))
            if stored is not None:
                return explain.from_png(stored.png, work_id)
        picture = self.screener.explain(
            self.screener.catalog.blob(sha256), work_id, caption=_caption(check_id, created)
        )
        try:
            with Session(self.engine) as session, session.begin():
                session.add(CheckPictureRow(check_id=check_id, work_id=work_id, png=picture.png))
        except IntegrityError:  # drawn at the same time by another request: theirs stands
            return self._picture(check_id, work_id, sha256, created)
        return picture


def _caption(check_id: str, created: dt.datetime) -> list[str]:
    return [f"check {check_id}  {iso(created)}"]
