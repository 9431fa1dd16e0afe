"""Re-screening released outputs against a work: the allowed, not yet re-screened checks
that the check-fingerprint index finds near the work are re-scored with its current
references (a notice's job), or every allowed check is (the scan the index must agree
with, and the benchmark's baseline). Nothing here is written but the marks of the checks
a notice found, in the notice's own transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from screener.core.policy import Decision
from screener.duties.jobs import JobDuties
from screener.matching.check_index import near_work
from screener.matching.signals import RegionFingerprint, from_stored
from screener.store.check_records import CheckFingerprintRow, CheckRow

_RESCREEN_BATCH = 200


class RescreenDuties(JobDuties):
    """Finding and re-scoring the released outputs near a work."""

    def rescreen(
        self, work_id: str, progress: Callable[[int, int], None] | None = None
    ) -> dict[str, Any]:
        """Re-score the allowed, not yet re-screened outputs that the check-fingerprint
        index finds near ``work_id`` (the policy's ``notices`` search) with the current
        references; list those that now match. Nothing is written here."""
        near = near_work(
            self.check_index, self.screener.catalog, work_id, self.screener.policy.notices
        )
        candidates = self._candidate_checks(near)
        result = self._rescore(
            work_id, self._allowed_checks(only=candidates), progress, len(candidates)
        )
        return {**result, "candidates": len(candidates)}

    def rescreen_by_scan(self, work_id: str) -> dict[str, Any]:
        """The same re-screening over every allowed output (no index): what the index
        must agree with, and the benchmark's baseline."""
        return self._rescore(work_id, self._allowed_checks(), None, 0)

    def _rescore(
        self,
        work_id: str,
        batches: Iterator[list[tuple[str, str, list[RegionFingerprint]]]],
        progress: Callable[[int, int], None] | None,
        total: int,
    ) -> dict[str, Any]:
        affected: list[dict[str, Any]] = []
        count = 0
        for batch in batches:
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
            if progress is not None:
                progress(count, max(total, count))
        return {"rescreened": count, "affected": affected}

    def _candidate_checks(self, fingerprint_ids: set[int]) -> list[str]:
        """The allowed, not yet re-screened checks that own any of ``fingerprint_ids``
        (ids the table no longer has, aged out since, are dropped). Both lookups go by
        primary key alone and the rest is filtered here: a condition on the decision
        would let the database walk every allowed check ever stored."""
        ids = sorted(fingerprint_ids)
        owners: set[str] = set()
        found: list[str] = []
        with Session(self.engine) as session:
            for start in range(0, len(ids), 900):
                owners.update(
                    session.scalars(
                        select(CheckFingerprintRow.check_id).where(
                            CheckFingerprintRow.id.in_(ids[start : start + 900])
                        )
                    )
                )
            checks = sorted(owners)
            for start in range(0, len(checks), 900):
                found.extend(
                    check_id
                    for check_id, decision, marked in session.execute(
                        select(CheckRow.id, CheckRow.decision, CheckRow.rescreen).where(
                            CheckRow.id.in_(checks[start : start + 900])
                        )
                    )
                    if decision == Decision.ALLOW.value and marked is None
                )
        return sorted(found)

    @staticmethod
    def _mark_affected(
        session: Session, affected: list[dict[str, Any]], work_id: str, notice_id: str, at: Any
    ) -> None:
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
                        "at": at.isoformat(),
                    }
                )
            )

    def _allowed_checks(
        self, *, rescreened: bool = False, only: list[str] | None = None
    ) -> Iterator[list[tuple[str, str, list[RegionFingerprint]]]]:
        """Allowed checks with their stored fingerprints, a batch at a time (those an
        earlier notice re-screened too, with ``rescreened``; of ``only`` those ids)."""
        if only is not None:
            for start in range(0, len(only), _RESCREEN_BATCH):
                yield from self._allowed_batches(
                    rescreened=rescreened, within=only[start : start + _RESCREEN_BATCH]
                )
            return
        yield from self._allowed_batches(rescreened=rescreened)

    def _allowed_batches(
        self, *, rescreened: bool, within: list[str] | None = None
    ) -> Iterator[list[tuple[str, str, list[RegionFingerprint]]]]:
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
                        CheckRow.id.in_(within) if within is not None else CheckRow.id.is_not(None),
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
