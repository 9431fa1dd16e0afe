"""Review: the queue of held checks and a reviewer's confirmation or rejection (a
confirmation may add the output as a reference of the matched work)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from screener.core.errors import Conflict, InputError, NotFound, is_plain_id, quote
from screener.duties.base import _page, _record_origins, _text
from screener.duties.checks import CheckDuties
from screener.store.catalog import Work
from screener.store.check_records import CheckMatchRow, CheckRecord, CheckRow, check_record, now
from screener.store.keys import ApiKey, Role, require_role


class ReviewDuties(CheckDuties):
    """The review queue and its decisions."""

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
