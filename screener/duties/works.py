"""Works: registering them and their references, the references held for an operator, and
the owner's changes (licensees, thresholds, withdrawal, deletion)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from screener.core.errors import Forbidden, InputError, NotFound, is_plain_id, quote
from screener.core.policy import bands
from screener.duties.base import DeskBase, Upload, _page, _terms, _text
from screener.matching.pipeline import Registered
from screener.store.catalog import HeldReference, Reference, ReferenceRow, Work
from screener.store.check_records import ReferenceOriginRow
from screener.store.keys import ApiKey, Role, require_role


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


class WorkDuties(DeskBase):
    """Registered works and their references, each change audited."""

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
            checked = bands(
                review=thresholds.get("review", base.review),
                block=thresholds.get("block", base.block),
            )
            thresholds = {"review": checked.review, "block": checked.block}
        return self.screener.catalog.update_work(
            work.id,
            thresholds=thresholds,
            hook=self._audited(key, "work.thresholds", work_id, {"thresholds": thresholds}),
        )
