"""Writing works: registering a work and its references (and held ones), changing and
removing them. Every write is one transaction that logs the fingerprints it adds or removes
in ``index_log`` and calls the caller's hook last, inside the transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    delete,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from screener.core.errors import Conflict, NotFound, quote
from screener.store.catalog.queries import query_works
from screener.store.catalog.records import (
    _UNSET,
    HeldReference,
    NewHeld,
    NewReference,
    RegisterHook,
    RemoveHook,
    UpdateHook,
    Work,
    local_rows,
)
from screener.store.catalog.tables import (
    BlobRow,
    FingerprintRow,
    HeldReferenceRow,
    IndexLogRow,
    LicenseeRow,
    LocalFeatureRow,
    ReferenceRow,
    RelatedTermRow,
    TermLogRow,
    TerritoryRow,
    WorkRow,
)


def unavailable(work_id: str) -> str:
    """The one answer to creating a work under a taken id, whoever's work holds it."""
    return (
        f"work id {quote(work_id)} is not available: choose another (to add images to a work "
        "of yours, add references to it)"
    )


def _keep_blob(session: Session, sha256: str, data: bytes) -> None:
    """Store an image's bytes once, however many references or held references name it."""
    if session.get(BlobRow, sha256) is None:
        session.add(BlobRow(sha256=sha256, data=data))


_Image = TypeVar("_Image", NewReference, NewHeld)


def _unseen(session: Session, images: Iterable[_Image], known: set[str]) -> Iterator[_Image]:
    """The images whose bytes the work does not hold yet (``known``: their sha256, updated
    as they go), each with its bytes stored."""
    for image in images:
        if image.sha256 in known:
            continue
        known.add(image.sha256)
        _keep_blob(session, image.sha256, image.data)
        yield image


def _image_columns(work_id: str, image: NewReference | NewHeld) -> dict[str, Any]:
    return {
        "work_id": work_id,
        "sha256": image.sha256,
        "source_name": image.source_name,
        "format": image.format,
        "width": image.width,
        "height": image.height,
    }


class WorkWrites:
    """The catalog's writes of works and references (a part of :class:`Catalog`)."""

    engine: Engine

    # works -------------------------------------------------------------------------------

    def register(
        self,
        work_id: str,
        *,
        title: str,
        owner: str,
        aliases: Sequence[str],
        references: Sequence[NewReference],
        related_terms: Sequence[str] = (),
        create_only: bool = False,
        must_exist: bool = False,
        hook: RegisterHook | None = None,
        held: Sequence[NewHeld] = (),
        release: int | None = None,
    ) -> tuple[Work, list[int], list[int]]:
        """Create the work (or extend it) and add references, all in one transaction.

        References already on the work (same sha256) are skipped, and so are ``held``
        ones already on it or already held. ``release``: the held reference being
        approved, deleted in the same transaction (NotFound once it is gone). Returns the
        work, the ids of the references added and of those held.
        """
        added: list[int] = []
        held_ids: list[int] = []
        with Session(self.engine) as session, session.begin():
            if release is not None:
                gone = session.execute(
                    delete(HeldReferenceRow).where(
                        HeldReferenceRow.id == release, HeldReferenceRow.work_id == work_id
                    )
                )
                if getattr(gone, "rowcount", 0) != 1:
                    raise NotFound(f"work {work_id!r} has no held reference {release}")
            row = session.get(WorkRow, work_id)
            if row is None and must_exist:
                raise NotFound(f"no work {work_id!r}")
            if row is None:
                row = WorkRow(id=work_id, title=title, owner=owner, aliases=list(aliases))
                session.add(row)
                session.flush()
                session.add_all(
                    RelatedTermRow(work_id=work_id, term=t) for t in dict.fromkeys(related_terms)
                )
                session.add(TermLogRow(work_id=work_id, op="set"))
            elif create_only:
                raise Conflict(unavailable(work_id))
            known = set(
                session.scalars(select(ReferenceRow.sha256).where(ReferenceRow.work_id == work_id))
            )
            for ref in _unseen(session, references, known):
                ref_row = ReferenceRow(**_image_columns(work_id, ref), byte_size=len(ref.data))
                session.add(ref_row)
                session.flush()
                added.append(ref_row.id)
                fp_rows = [
                    FingerprintRow(
                        reference_id=ref_row.id,
                        signal=fp.signal,
                        spec_id=fp.spec_id,
                        region=fp.region,
                        vector=fp.vector,
                        quality=fp.quality,
                    )
                    for fp in ref.fingerprints
                ]
                session.add_all(fp_rows)
                session.add_all(local_rows(ref_row.id, ref.local))
                session.flush()
                session.add_all(
                    IndexLogRow(signal=f.signal, spec_id=f.spec_id, fingerprint_id=f.id, op="add")
                    for f in fp_rows
                )
            held_ids = self._hold(session, work_id, held, known)
            session.flush()
            work = query_works(session, WorkRow.id == row.id)[0]
            if hook is not None:
                hook(session, work, added, held_ids)
        return work, added, held_ids

    @staticmethod
    def _hold(
        session: Session, work_id: str, held: Sequence[NewHeld], known: set[str]
    ) -> list[int]:
        """Store references held for an operator (no fingerprints: no index sees them)."""
        known = known | set(
            session.scalars(
                select(HeldReferenceRow.sha256).where(HeldReferenceRow.work_id == work_id)
            )
        )
        ids: list[int] = []
        for ref in _unseen(session, held, known):
            row = HeldReferenceRow(**_image_columns(work_id, ref), findings=list(ref.findings))
            session.add(row)
            session.flush()
            ids.append(row.id)
        return ids

    def held(
        self, *, work_id: str | None = None, owner: str | None = None, held_id: int | None = None
    ) -> list[HeldReference]:
        """References held for an operator, oldest first (of one work, owner or id)."""
        query = select(HeldReferenceRow, WorkRow.owner).join(
            WorkRow, WorkRow.id == HeldReferenceRow.work_id
        )
        if work_id is not None:
            query = query.where(HeldReferenceRow.work_id == work_id)
        if owner is not None:
            query = query.where(WorkRow.owner == owner)
        if held_id is not None:
            query = query.where(HeldReferenceRow.id == held_id)
        with Session(self.engine) as session:
            rows = session.execute(query.order_by(HeldReferenceRow.id)).all()
        return [
            HeldReference(
                r.id,
                r.work_id,
                work_owner,
                r.sha256,
                r.source_name,
                r.format,
                r.width,
                r.height,
                tuple(r.findings or ()),
                r.created_at,
            )
            for r, work_owner in rows
        ]

    def reject_held(self, work_id: str, held_id: int, hook: RemoveHook | None = None) -> None:
        """Drop a held reference (its bytes stay with the other blobs)."""
        with Session(self.engine) as session, session.begin():
            row = session.get(HeldReferenceRow, held_id)
            if row is None or row.work_id != work_id:
                raise NotFound(f"work {work_id!r} has no held reference {held_id}")
            session.delete(row)
            if hook is not None:
                hook(session, 0)

    def update_work(
        self,
        work_id: str,
        *,
        title: str | None = None,
        aliases: Sequence[str] | None = None,
        thresholds: dict[str, float] | None = _UNSET,
        licensees: Sequence[str] | None = None,
        territories: dict[tuple[str, str], Sequence[str]] | None = None,
        related_terms: Sequence[str] | None = None,
        hook: UpdateHook | None = None,
    ) -> Work:
        """Change a work's metadata; arguments left out stay as they are
        (``thresholds=None`` clears the work's own thresholds). ``territories`` replaces
        the territories of each (scope, licensee) it names (an empty list: everywhere)."""
        with Session(self.engine) as session, session.begin():
            row = session.get(WorkRow, work_id)
            if row is None:
                raise NotFound(f"no work {work_id!r}")
            if title is not None:
                row.title = title
            if aliases is not None:
                row.aliases = list(aliases)
            if related_terms is not None:
                session.execute(delete(RelatedTermRow).where(RelatedTermRow.work_id == work_id))
                session.add_all(
                    RelatedTermRow(work_id=work_id, term=t) for t in dict.fromkeys(related_terms)
                )
            if title is not None or aliases is not None or related_terms is not None:
                session.add(TermLogRow(work_id=work_id, op="set"))
            if thresholds is not _UNSET:
                row.thresholds = dict(thresholds) if thresholds else None
            if licensees is not None:
                session.execute(delete(LicenseeRow).where(LicenseeRow.work_id == work_id))
                session.add_all(
                    LicenseeRow(work_id=work_id, licensee=name) for name in dict.fromkeys(licensees)
                )
                session.execute(  # a licence withdrawn takes its territories along
                    delete(TerritoryRow).where(
                        TerritoryRow.work_id == work_id,
                        TerritoryRow.scope == "licensee",
                        TerritoryRow.licensee.not_in(list(licensees)),
                    )
                )
            for (scope, licensee), codes in (territories or {}).items():
                session.execute(
                    delete(TerritoryRow).where(
                        TerritoryRow.work_id == work_id,
                        TerritoryRow.scope == scope,
                        TerritoryRow.licensee == licensee,
                    )
                )
                session.add_all(
                    TerritoryRow(work_id=work_id, scope=scope, licensee=licensee, territory=code)
                    for code in dict.fromkeys(codes)
                )
            session.flush()
            work = query_works(session, WorkRow.id == work_id)[0]
            if hook is not None:
                hook(session, work)
        return work

    def remove_work(self, work_id: str, hook: RemoveHook | None = None) -> int:
        """Delete a work with its references and fingerprints; returns fingerprints removed."""
        with Session(self.engine) as session, session.begin():
            row = session.get(WorkRow, work_id)
            if row is None:
                raise NotFound(f"no work {work_id!r}")
            ref_ids = select(ReferenceRow.id).where(ReferenceRow.work_id == work_id)
            removed = self._log_removal(session, FingerprintRow.reference_id.in_(ref_ids))
            session.execute(delete(FingerprintRow).where(FingerprintRow.reference_id.in_(ref_ids)))
            session.execute(
                delete(LocalFeatureRow).where(LocalFeatureRow.reference_id.in_(ref_ids))
            )
            session.execute(delete(ReferenceRow).where(ReferenceRow.work_id == work_id))
            session.execute(delete(HeldReferenceRow).where(HeldReferenceRow.work_id == work_id))
            session.execute(delete(LicenseeRow).where(LicenseeRow.work_id == work_id))
            session.execute(delete(TerritoryRow).where(TerritoryRow.work_id == work_id))
            session.execute(delete(RelatedTermRow).where(RelatedTermRow.work_id == work_id))
            session.add(TermLogRow(work_id=work_id, op="remove"))
            session.delete(row)
            if hook is not None:
                hook(session, removed)
        return removed

    def remove_reference(
        self, work_id: str, reference_id: int, hook: RemoveHook | None = None
    ) -> int:
        with Session(self.engine) as session, session.begin():
            ref = session.get(ReferenceRow, reference_id)
            if ref is None or ref.work_id != work_id:
                raise NotFound(f"work {work_id!r} has no reference {reference_id}")
            removed = self._log_removal(session, FingerprintRow.reference_id == reference_id)
            session.execute(
                delete(FingerprintRow).where(FingerprintRow.reference_id == reference_id)
            )
            session.execute(
                delete(LocalFeatureRow).where(LocalFeatureRow.reference_id == reference_id)
            )
            session.delete(ref)
            if hook is not None:
                hook(session, removed)
        return removed

    @staticmethod
    def _log_removal(session: Session, condition: Any) -> int:
        rows = session.execute(
            select(FingerprintRow.id, FingerprintRow.signal, FingerprintRow.spec_id).where(
                condition
            )
        ).all()
        session.add_all(
            IndexLogRow(signal=signal, spec_id=spec, fingerprint_id=fid, op="remove")
            for fid, signal, spec in rows
        )
        return len(rows)
