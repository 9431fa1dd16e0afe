"""Stored cohort levels: each work's k closest *other* registered works per evidence name,
kept beside the catalog so that a check reads a candidate's cohort level (one row) instead
of screening the work's fingerprints against the registry at check time.

A work's cohort level per evidence name is the value the k-th closest other registered
work reaches against it (see `Scoring._cohort_entries`). The top-k values are stored with
the works that reach them, so that a new work is merged in exactly and a removed one is
known to matter. The rows are derived data, kept up to date incrementally after each
catalog change (`Scoring.sync_cohorts`) from the index log since a stored mark:

- a new work (or new references of a work) gets its own levels from its nearest
  neighbours, and each neighbour's row gains its value against the new work;
- a removed work, or a work that lost references, makes the rows that name it computed
  afresh.

A row is current only while its work's reference ids and the setting it was computed
under (k, quality floors, signal specs, neighbours) are unchanged; a row that is not is
computed afresh, lazily, on the check that needs it. The rows and the mark are written
in one transaction after the catalog change, so a crash between the two leaves the mark
behind the catalog: the next sync (on start) replays the change, never a row that
silently misses it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Integer, String, Text, delete, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from screener.store.catalog import Catalog, IndexLogRow, ReferenceRow

MARK = "cohorts"
# Per evidence name, the closest other works' values, closest first: (value, work id).
Entries = dict[str, list[tuple[float, str]]]


class _Base(DeclarativeBase):
    pass


class CohortRow(_Base):
    """One work's closest other works per evidence name, as computed under ``setting``
    from the references ``refs`` (sorted ids, comma-separated)."""

    __tablename__ = "cohort_levels"
    work_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    setting: Mapped[str] = mapped_column(String(64))
    refs: Mapped[str] = mapped_column(Text)
    entries: Mapped[str] = mapped_column(Text)  # JSON: {name: [[value, work id], ...]}


class CohortMarkRow(_Base):
    """The index-log sequence number up to which the rows reflect the catalog."""

    __tablename__ = "cohort_marks"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)


@dataclass(frozen=True)
class Row:
    work_id: str
    setting: str
    refs: frozenset[int]
    entries: Entries

    def names(self) -> set[str]:
        """The other works this row's levels rest on."""
        return {other for found in self.entries.values() for _, other in found}


def level(entries: Entries, k: int) -> dict[str, float]:
    """The k-th closest other work's value per evidence name (none where fewer reach it)."""
    return {name: found[k - 1][0] for name, found in entries.items() if len(found) >= k}


def merge(
    entries: Entries, other: str, values: Mapping[str, float], k: int, lower_closer: set[str]
) -> Entries:
    """``entries`` with ``other``'s values put in (replacing any it had), top k kept."""
    out: Entries = {}
    for name in set(entries) | set(values):
        found = [(v, w) for v, w in entries.get(name, []) if w != other]
        if name in values:
            found.append((float(values[name]), other))
        found.sort(key=lambda e: (e[0] if name in lower_closer else -e[0], e[1]))
        out[name] = found[:k]
    return out


def top_k(by_work: Mapping[str, float], k: int, lower_closer: bool) -> list[tuple[float, str]]:
    """The ``k`` closest works' values, closest first (ties by work id)."""
    found = sorted(
        ((float(v), w) for w, v in by_work.items()),
        key=lambda e: (e[0] if lower_closer else -e[0], e[1]),
    )
    return found[:k]


class CohortStore:
    """The ``cohort_levels`` and ``cohort_marks`` tables of a catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        for table in (CohortRow.__table__, CohortMarkRow.__table__):
            table.create(catalog.engine, checkfirst=True)  # type: ignore[attr-defined]

    def rows(self, work_ids: Iterable[str] | None = None) -> dict[str, Row]:
        query = select(CohortRow)
        if work_ids is not None:
            query = query.where(CohortRow.work_id.in_(list(work_ids)))
        with Session(self.catalog.engine) as session:
            found = list(session.scalars(query))
        return {r.work_id: _row(r) for r in found}

    def references(self, work_ids: Iterable[str] | None = None) -> dict[str, frozenset[int]]:
        """The reference ids of ``work_ids`` (default: every work) as the catalog holds them."""
        query = select(ReferenceRow.work_id, ReferenceRow.id)
        if work_ids is not None:
            query = query.where(ReferenceRow.work_id.in_(list(work_ids)))
        out: dict[str, set[int]] = {}
        with Session(self.catalog.engine) as session:
            for work_id, reference_id in session.execute(query).all():
                out.setdefault(str(work_id), set()).add(int(reference_id))
        return {w: frozenset(ids) for w, ids in out.items()}

    def mark(self) -> int | None:
        with Session(self.catalog.engine) as session:
            row = session.get(CohortMarkRow, MARK)
            return None if row is None else int(row.seq)

    def changes_since(self, seq: int) -> tuple[set[int], bool]:
        """The fingerprint ids added to the index log past ``seq``, and whether any was
        removed."""
        with Session(self.catalog.engine) as session:
            rows = session.execute(
                select(IndexLogRow.fingerprint_id, IndexLogRow.op).where(IndexLogRow.seq > seq)
            ).all()
        added = {int(f) for f, op in rows if op == "add"}
        return added, any(op != "add" for _, op in rows)

    def high_water(self) -> int:
        with Session(self.catalog.engine) as session:
            return int(session.scalar(select(func.max(IndexLogRow.seq))) or 0)

    def write(
        self, rows: Sequence[Row], *, drop: Iterable[str] = (), mark: int | None = None
    ) -> None:
        """Store ``rows``, drop those of ``drop`` and move the mark, in one transaction."""
        with Session(self.catalog.engine) as session, session.begin():
            gone = list(drop)
            if gone:
                session.execute(delete(CohortRow).where(CohortRow.work_id.in_(gone)))
            for row in rows:
                session.merge(
                    CohortRow(
                        work_id=row.work_id,
                        setting=row.setting,
                        refs=",".join(str(i) for i in sorted(row.refs)),
                        entries=json.dumps(
                            {n: [[v, w] for v, w in found] for n, found in row.entries.items()},
                            sort_keys=True,
                        ),
                    )
                )
            if mark is not None:
                session.merge(CohortMarkRow(name=MARK, seq=mark))


def _row(stored: CohortRow) -> Row:
    entries = {
        name: [(float(v), str(w)) for v, w in found]
        for name, found in json.loads(stored.entries).items()
    }
    refs = frozenset(int(i) for i in stored.refs.split(",") if i)
    return Row(stored.work_id, stored.setting, refs, entries)
