"""Notices: a rights holder's complaint, the measures it triggers (rescreening released
outputs, adding references), and who may read or reject which."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from screener.core.errors import Conflict, InputError, NotFound, is_plain_id, quote
from screener.core.policy import Decision
from screener.duties import redaction
from screener.duties.base import Upload, _page, _text, _with_origins
from screener.duties.rescreening import RescreenDuties
from screener.matching.outputs import same_output, whole
from screener.matching.pipeline import CheckItem, Prepared, check_work_id
from screener.store.catalog import BlobRow, unavailable
from screener.store.check_records import (
    CheckRow,
    Notice,
    NoticeRow,
    new_id,
    notice,
    now,
)
from screener.store.jobs import LIVE, JobRow
from screener.store.keys import ApiKey, Role, can_manage_work, require_role

MAX_NAMED_CHECKS = 100


class NoticeDuties(RescreenDuties):
    """Filing, reading and rejecting notices, and the measures they trigger (a job)."""

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
        """Record a rights holder's notice and a job that takes the measures: the images
        join the work's references and the allowed outputs near the work in the
        check-fingerprint index are re-screened against it. With a worker (the service)
        the notice returns ``received`` with its job queued; without one the job runs
        here first. ``outputs``: images of released outputs complained of; the service
        finds their checks (:mod:`screener.matching.outputs`) and names them."""
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
            job_id = self.new_job(session, "notice", notice_id=notice_id, owner=owner)
        self.dispatch(job_id)
        return self.get_notice(key, notice_id)

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
            whole(fps)
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
                stored = whole(query)
                for name, mine in zip(names, queries, strict=True):
                    if check_id not in found[name] and same_output(mine, stored, kinds, policy):
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
        """Take the measures of notices recorded but not acted on (a crash in between, or a
        job that failed): their queued or running job, or a new one. Runs them here
        without a worker; returns the notices as they stand then."""
        with Session(self.engine) as session, session.begin():
            waiting = list(session.scalars(select(NoticeRow).where(NoticeRow.status == "received")))
            jobs = []
            for row in waiting:
                live = session.scalar(
                    select(JobRow.id).where(JobRow.notice_id == row.id, JobRow.state.in_(LIVE))
                )
                jobs.append(
                    live or self.new_job(session, "notice", notice_id=row.id, owner=row.owner)
                )
            ids = [row.id for row in waiting]
        for job_id in jobs:
            self.dispatch(job_id)
        with Session(self.engine) as session:
            return [notice(r) for r in (session.get(NoticeRow, i) for i in ids) if r is not None]

    def start_jobs(self) -> int:
        """Start the worker (:meth:`JobDuties.start_jobs`) after giving every notice left
        received a job, so that the worker takes up those too."""
        with Session(self.engine) as session, session.begin():
            for row in session.scalars(select(NoticeRow).where(NoticeRow.status == "received")):
                live = session.scalar(
                    select(JobRow.id).where(JobRow.notice_id == row.id, JobRow.state.in_(LIVE))
                )
                if live is None:
                    self.new_job(session, "notice", notice_id=row.id, owner=row.owner)
        return super().start_jobs()

    def run_notice_job(self, job_id: str, notice_id: str) -> None:
        self._take_measures("service", notice_id, job_id)

    def _take_measures(self, actor: str, notice_id: str, job_id: str) -> Notice:
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
        affected = self.rescreen(work_id, lambda done, total: self.progress(job_id, done, total))
        named_status = self._named_checks(named, affected, owner)
        at = now()
        measures = {
            "at": at.isoformat(),
            "job_id": job_id,
            "references_added": added,
            "references_already_registered": skipped,
            "candidate_checks": affected["candidates"],
            "rescreened_checks": affected["rescreened"],
            "affected_check_ids": [a["check_id"] for a in affected["affected"]],
            "affected": affected["affected"],
            "named_checks": named_status,
            **({"found_by_image": by_image} if by_image is not None else {}),
        }
        with Session(self.engine) as session, session.begin():
            # One transaction: the outputs marked, the notice's measures and its job done.
            self.audit.lock(session)
            self._mark_affected(session, affected["affected"], work_id, notice_id, at)
            self.finish(
                session,
                job_id,
                {k: v for k, v in measures.items() if k not in ("at", "job_id")},
                affected["rescreened"],
            )
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
        item = replace(item, job=self.job_of_notice(key, item.id))
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
            live = session.scalar(
                select(JobRow.id).where(JobRow.notice_id == notice_id, JobRow.state.in_(LIVE))
            )
            if live is not None:  # its references may still be added after a rejection
                raise Conflict(
                    f"notice {notice_id} is still being acted on (job {live}): reject it "
                    "once the job is done"
                )
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
