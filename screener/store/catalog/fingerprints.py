"""Reading fingerprints, local features and the index log: what indexes catch up from and what
verification reads for its few candidate works; and adding local features afterwards."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from screener.store.catalog.records import (
    LogEntry,
    NewLocalFeatures,
    StoredFingerprint,
    StoredLocalFeatures,
    local_rows,
    stored_local,
)
from screener.store.catalog.tables import (
    FingerprintRow,
    IndexLogRow,
    LocalFeatureRow,
    ReferenceRow,
)


class FingerprintQueries:
    """The catalog's fingerprint, local-feature and log access (a part of :class:`Catalog`)."""

    engine: Engine

    def high_water(self) -> int:
        with Session(self.engine) as session:
            return int(session.scalar(select(func.max(IndexLogRow.seq))) or 0)

    def log_since(self, signal: str, spec_id: str, seq: int) -> list[LogEntry]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(IndexLogRow.seq, IndexLogRow.fingerprint_id, IndexLogRow.op)
                .where(
                    IndexLogRow.signal == signal,
                    IndexLogRow.spec_id == spec_id,
                    IndexLogRow.seq > seq,
                )
                .order_by(IndexLogRow.seq)
            ).all()
        return [LogEntry(s, f, o) for s, f, o in rows]

    def _fingerprints(self, condition: Any) -> list[StoredFingerprint]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(FingerprintRow, ReferenceRow.work_id)
                .join(ReferenceRow, FingerprintRow.reference_id == ReferenceRow.id)
                .where(condition)
                .order_by(FingerprintRow.id)
            ).all()
        return [
            StoredFingerprint(
                f.id, work_id, f.reference_id, f.signal, f.spec_id, f.region, f.vector, f.quality
            )
            for f, work_id in rows
        ]

    def fingerprints_by_id(self, ids: Iterable[int]) -> list[StoredFingerprint]:
        id_list = sorted(set(ids))
        found: list[StoredFingerprint] = []
        for start in range(0, len(id_list), 900):  # keep under SQLite's variable limit
            found += self._fingerprints(FingerprintRow.id.in_(id_list[start : start + 900]))
        return found

    def owners(self, ids: Iterable[int]) -> dict[int, tuple[str, int, str]]:
        """(work id, reference id, region) of each fingerprint id still in the catalog."""
        id_list = sorted(set(ids))
        found: dict[int, tuple[str, int, str]] = {}
        with Session(self.engine) as session:
            for start in range(0, len(id_list), 900):  # keep under SQLite's variable limit
                rows = session.execute(
                    select(
                        FingerprintRow.id,
                        ReferenceRow.work_id,
                        FingerprintRow.reference_id,
                        FingerprintRow.region,
                    )
                    .join(ReferenceRow, FingerprintRow.reference_id == ReferenceRow.id)
                    .where(FingerprintRow.id.in_(id_list[start : start + 900]))
                ).all()
                found.update({int(f): (w, int(r), g) for f, w, r, g in rows})
        return found

    def fingerprints_of_works(
        self, work_ids: Iterable[str], signal: str, spec_id: str
    ) -> list[StoredFingerprint]:
        return self._fingerprints(
            ReferenceRow.work_id.in_(list(work_ids))
            & (FingerprintRow.signal == signal)
            & (FingerprintRow.spec_id == spec_id)
        )

    # local features ----------------------------------------------------------------------

    def local_features_of_works(
        self, work_ids: Iterable[str], spec_id: str
    ) -> list[StoredLocalFeatures]:
        return self.local_features_by_rows(self.local_feature_rows(spec_id, work_ids=work_ids))

    def local_feature_rows(
        self, spec_id: str, *, work_ids: Iterable[str] | None = None, after: int = 0
    ) -> dict[int, str]:
        """The row id of every stored keypoint set of ``spec_id`` (of ``work_ids`` only,
        past row ``after`` only), with its work. No keypoints are read: a check reads
        only the sets it has not cached, and the descriptor index compares rows."""
        query = (
            select(LocalFeatureRow.id, ReferenceRow.work_id)
            .join(ReferenceRow, LocalFeatureRow.reference_id == ReferenceRow.id)
            .where(LocalFeatureRow.spec_id == spec_id, LocalFeatureRow.id > after)
            .order_by(LocalFeatureRow.id)
        )
        if work_ids is not None:
            query = query.where(ReferenceRow.work_id.in_(list(work_ids)))
        with Session(self.engine) as session:
            rows = session.execute(query).all()
        return {int(i): str(w) for i, w in rows}

    def local_features_by_rows(self, row_ids: Iterable[int]) -> list[StoredLocalFeatures]:
        """The keypoint sets stored in ``row_ids`` (those still there), in row order."""
        wanted = sorted(set(row_ids))
        found: list[StoredLocalFeatures] = []
        for start in range(0, len(wanted), 500):
            with Session(self.engine) as session:
                rows = session.execute(
                    select(LocalFeatureRow, ReferenceRow.work_id)
                    .join(ReferenceRow, LocalFeatureRow.reference_id == ReferenceRow.id)
                    .where(LocalFeatureRow.id.in_(wanted[start : start + 500]))
                    .order_by(LocalFeatureRow.id)
                ).all()
            found.extend(stored_local(r, work_id) for r, work_id in rows)
        return found

    def references_without_local(self, spec_id: str) -> list[tuple[int, str]]:
        """(reference id, image sha256) of references with no local features of
        ``spec_id``: registered before local features, or under another spec."""
        with Session(self.engine) as session:
            has = select(LocalFeatureRow.reference_id).where(LocalFeatureRow.spec_id == spec_id)
            rows = session.execute(
                select(ReferenceRow.id, ReferenceRow.sha256)
                .where(ReferenceRow.id.not_in(has))
                .order_by(ReferenceRow.id)
            ).all()
        return [(int(i), str(h)) for i, h in rows]

    def add_local(self, reference_id: int, local: Sequence[NewLocalFeatures]) -> bool:
        """Store a reference's local features (a backfill); False when the reference
        was removed meanwhile or already has them."""
        with Session(self.engine) as session, session.begin():
            if session.get(ReferenceRow, reference_id) is None:
                return False
            specs = {f.spec_id for f in local}
            present = session.scalar(
                select(func.count()).where(
                    LocalFeatureRow.reference_id == reference_id,
                    LocalFeatureRow.spec_id.in_(specs),
                )
            )
            if present:
                return False
            session.add_all(local_rows(reference_id, local))
        return True

    def iter_fingerprints(
        self, signal: str, spec_id: str, batch: int = 10_000
    ) -> Iterator[list[tuple[int, bytes]]]:
        """Every (id, vector) of one signal and spec, in id order, in batches."""
        last = 0
        while True:
            with Session(self.engine) as session:
                rows = session.execute(
                    select(FingerprintRow.id, FingerprintRow.vector)
                    .where(
                        FingerprintRow.signal == signal,
                        FingerprintRow.spec_id == spec_id,
                        FingerprintRow.id > last,
                    )
                    .order_by(FingerprintRow.id)
                    .limit(batch)
                ).all()
            if not rows:
                return
            yield [(int(i), bytes(v)) for i, v in rows]
            last = int(rows[-1][0])

    def fingerprint_ids(self, signal: str, spec_id: str) -> list[int]:
        with Session(self.engine) as session:
            return list(
                session.scalars(
                    select(FingerprintRow.id)
                    .where(FingerprintRow.signal == signal, FingerprintRow.spec_id == spec_id)
                    .order_by(FingerprintRow.id)
                )
            )
