"""Reading works: one work, many, a page of them, their prompt terms, references and stored
image bytes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from screener.core.errors import NotFound
from screener.store.catalog.records import (
    PromptTerms,
    Reference,
    Work,
)
from screener.store.catalog.tables import (
    BlobRow,
    LicenseeRow,
    ReferenceRow,
    RelatedTermRow,
    TermLogRow,
    TerritoryRow,
    WorkRow,
)


def query_works(
    session: Session,
    condition: Any = None,
    order: bool = False,
    offset: int = 0,
    limit: int | None = None,
) -> list[Work]:
    """Works with their reference counts, in one query (no count per work)."""
    counts = (
        select(ReferenceRow.work_id, func.count().label("n"))
        .group_by(ReferenceRow.work_id)
        .subquery()
    )
    query = select(WorkRow, counts.c.n).outerjoin(counts, counts.c.work_id == WorkRow.id)
    if condition is not None:
        query = query.where(condition)
    if order:
        query = query.order_by(WorkRow.id)
    query = query.offset(offset) if offset else query
    query = query.limit(limit) if limit is not None else query
    rows = session.execute(query).all()
    licensees: dict[str, list[str]] = {}
    ids = [row.id for row, _ in rows]
    for start in range(0, len(ids), 900):  # keep under SQLite's variable limit
        for work_id, name in session.execute(
            select(LicenseeRow.work_id, LicenseeRow.licensee)
            .where(LicenseeRow.work_id.in_(ids[start : start + 900]))
            .order_by(LicenseeRow.licensee)
        ):
            licensees.setdefault(work_id, []).append(name)
    places: dict[tuple[str, str], list[str]] = {}
    licensed_in: dict[str, dict[str, list[str]]] = {}
    for start in range(0, len(ids), 900):
        for work_id, scope, licensee, territory in session.execute(
            select(
                TerritoryRow.work_id,
                TerritoryRow.scope,
                TerritoryRow.licensee,
                TerritoryRow.territory,
            )
            .where(TerritoryRow.work_id.in_(ids[start : start + 900]))
            .order_by(TerritoryRow.territory)
        ):
            if scope == "licensee":
                licensed_in.setdefault(work_id, {}).setdefault(licensee, []).append(territory)
            else:
                places.setdefault((work_id, scope), []).append(territory)
    related = _related(session, ids)
    return [
        Work(
            id=row.id,
            title=row.title,
            owner=row.owner,
            aliases=tuple(row.aliases or ()),
            thresholds=dict(row.thresholds) if row.thresholds else None,
            reference_count=int(n or 0),
            created_at=row.created_at,
            licensees=tuple(licensees.get(row.id, ())),
            territories=tuple(places.get((row.id, "work"), ())),
            threshold_territories=tuple(places.get((row.id, "thresholds"), ())),
            licensee_territories={
                name: tuple(found) for name, found in licensed_in.get(row.id, {}).items()
            },
            related_terms=tuple(related.get(row.id, ())),
        )
        for row, n in rows
    ]


def _related(session: Session, ids: Sequence[str] | None) -> dict[str, list[str]]:
    """Each work's related terms, in the order given (of ``ids`` only, or all)."""
    query = select(RelatedTermRow.work_id, RelatedTermRow.term).order_by(RelatedTermRow.id)
    found: dict[str, list[str]] = {}
    if ids is None:
        for work_id, term in session.execute(query):
            found.setdefault(work_id, []).append(term)
        return found
    for start in range(0, len(ids), 900):  # keep under SQLite's variable limit
        for work_id, term in session.execute(
            query.where(RelatedTermRow.work_id.in_(ids[start : start + 900]))
        ):
            found.setdefault(work_id, []).append(term)
    return found


class WorkQueries:
    """The catalog's reads of works and references (a part of :class:`Catalog`)."""

    engine: Engine

    def get_work(self, work_id: str) -> Work:
        with Session(self.engine) as session:
            found = query_works(session, WorkRow.id == work_id)
        if not found:
            raise NotFound(f"no work {work_id!r}")
        return found[0]

    def works(self, work_ids: Iterable[str]) -> dict[str, Work]:
        """The works among ``work_ids`` that exist, by id."""
        ids = list(dict.fromkeys(work_ids))
        with Session(self.engine) as session:
            return {
                w.id: w
                for start in range(0, len(ids), 900)  # keep under SQLite's variable limit
                for w in query_works(session, WorkRow.id.in_(ids[start : start + 900]))
            }

    def list_works(
        self, offset: int = 0, limit: int | None = None, owner: str | None = None
    ) -> list[Work]:
        condition = None if owner is None else WorkRow.owner == owner
        with Session(self.engine) as session:
            return query_works(session, condition, order=True, offset=offset, limit=limit)

    def count_works(self, owner: str | None = None) -> int:
        query = select(func.count()).select_from(WorkRow)
        if owner is not None:
            query = query.where(WorkRow.owner == owner)
        with Session(self.engine) as session:
            return int(session.scalar(query) or 0)

    def keywords(self) -> dict[str, tuple[str, ...]]:
        """Each work's title and aliases (the per-check load that the prompt automaton
        replaced; the prompt benchmark times it for comparison)."""
        with Session(self.engine) as session:
            rows = session.execute(select(WorkRow.id, WorkRow.title, WorkRow.aliases)).all()
        return {wid: (title, *(aliases or ())) for wid, title, aliases in rows}

    def prompt_terms(self, work_ids: Iterable[str] | None = None) -> list[PromptTerms]:
        """The prompt terms of every work, or of those among ``work_ids`` that exist."""
        ids = None if work_ids is None else list(dict.fromkeys(work_ids))
        columns = select(WorkRow.id, WorkRow.title, WorkRow.owner, WorkRow.aliases)
        with Session(self.engine) as session:
            if ids is None:
                rows = list(session.execute(columns).all())
            else:
                rows = []
                for start in range(0, len(ids), 900):  # keep under SQLite's variable limit
                    chunk = ids[start : start + 900]
                    rows += session.execute(columns.where(WorkRow.id.in_(chunk))).all()
            related = _related(session, ids)
        return [
            PromptTerms(wid, title, owner, (title, *(aliases or ())), tuple(related.get(wid, ())))
            for wid, title, owner, aliases in rows
        ]

    def term_high_water(self) -> int:
        """The last position of the prompt-term log (0 when empty)."""
        with self.engine.connect() as connection:  # plain SQL: asked before every prompt check
            found = connection.exec_driver_sql("SELECT max(seq) FROM term_log").scalar()
        return int(found or 0)

    def term_changes(self, after: int) -> tuple[list[str], int]:
        """The works whose prompt terms changed after log position ``after``, and the
        position read up to."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(TermLogRow.seq, TermLogRow.work_id)
                .where(TermLogRow.seq > after)
                .order_by(TermLogRow.seq)
            ).all()
        if not rows:
            return [], after
        return list(dict.fromkeys(w for _, w in rows)), int(rows[-1][0])

    def references(self, work_id: str) -> list[Reference]:
        return self.references_of_works([work_id]).get(work_id, [])

    def references_of_works(self, work_ids: Sequence[str]) -> dict[str, list[Reference]]:
        """The references of several works in one query, by work (works without any are
        left out), each work's in id order."""
        found: dict[str, list[Reference]] = {}
        if not work_ids:
            return found
        with Session(self.engine) as session:
            rows = session.scalars(
                select(ReferenceRow)
                .where(ReferenceRow.work_id.in_(list(dict.fromkeys(work_ids))))
                .order_by(ReferenceRow.id)
            )
            for r in rows:
                found.setdefault(r.work_id, []).append(
                    Reference(r.id, r.work_id, r.sha256, r.source_name, r.format, r.width, r.height)
                )
        return found

    def blob(self, sha256: str) -> bytes:
        with Session(self.engine) as session:
            row = session.get(BlobRow, sha256)
            if row is None:
                raise NotFound(f"no stored image {sha256}")
            return row.data
