"""Registration: `Registry` registers, holds, approves and removes works and their
reference images, writing the catalog first and then catching the indexes up; also what
a usable work id is."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from screener.core.decode import DecodedImage, Limits, decode
from screener.core.errors import DecodeError, InputError, NotFound, NotRegistrable, quote
from screener.core.text import refused_character
from screener.matching import registrability
from screener.matching.analysis import ImageInput
from screener.matching.signals import (
    EXTRA_BACKGROUNDS,
    RegionFingerprint,
    background_variant,
    over_background,
    vector_bytes,
)
from screener.matching.verification import OVER_BLACK
from screener.store.catalog import (
    HeldReference,
    NewFingerprint,
    NewHeld,
    NewReference,
    RegisterHook,
    RemoveHook,
    StoredFingerprint,
    Work,
)

if TYPE_CHECKING:
    from screener.matching.startup import ScreenerBase

_WORK_ID = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,200}$")


@dataclass(frozen=True)
class Registered:
    work: Work
    added_references: tuple[int, ...]
    skipped: int
    # References held for an operator (stored, not screened against until approved).
    held: tuple[HeldReference, ...] = ()


class Registry:
    """Registers and removes works; writes the catalog first, then the indexes."""

    def __init__(self, screener: ScreenerBase) -> None:
        self._s = screener

    def register(
        self,
        work_id: str,
        images: Sequence[ImageInput],
        *,
        title: str | None = None,
        owner: str = "",
        aliases: Sequence[str] = (),
        names: Sequence[str] | None = None,
        related_terms: Sequence[str] = (),
        create_only: bool = False,
        must_exist: bool = False,
        hook: RegisterHook | None = None,
        vetted: bool = False,
    ) -> Registered:
        """Register a work (or add references to an existing one) from its images.

        Every image is decoded, fingerprinted and measured (`screener.matching.registrability`)
        before anything is written: one bad image, or one with too little content
        (:class:`NotRegistrable`, naming each rule broken), fails the whole call and
        nothing changes. An image that looks like an ordinary picture of the background
        bank is stored but held for an operator (``Registered.held``), unless the caller
        is an operator who already judged it (``vetted``).
        """
        check_work_id(work_id)
        if not images:
            raise InputError(f"work {quote(work_id)}: at least one reference image is needed")
        prepared = [
            self._reference(image, names[i] if names else _name_of(image, i))
            for i, image in enumerate(images)
        ]
        refused = [
            registrability.refuse(ref.source_name, content)
            for ref, content, _ in prepared
            if content
        ]
        if refused:
            raise NotRegistrable(
                "; ".join(str(e) for e in refused), [f for e in refused for f in e.findings]
            )
        with self._s._lock:
            registered = self.store(
                work_id,
                [(ref, hold) for ref, _, hold in prepared],
                vetted=vetted,
                hook=hook,
                title=title or work_id,
                owner=owner,
                aliases=list(aliases),
                related_terms=list(related_terms),
                create_only=create_only,
                must_exist=must_exist,
            )
            self._s.catch_up(added_only=True)
        return registered

    def store(
        self,
        work_id: str,
        found: Sequence[tuple[NewReference, registrability.Finding | None]],
        *,
        vetted: bool = False,
        hook: RegisterHook | None = None,
        **details: Any,
    ) -> Registered:
        """One work's catalog transaction: the fingerprinted references, each kept or, with
        a reason to hold it and not ``vetted``, held for an operator; ``details``: the rest
        of :meth:`Catalog.register`'s fields. The caller holds the lock and catches the
        indexes up (once per work here, once per batch in `screener.matching.bulk`)."""
        references = [ref for ref, hold in found if hold is None or vetted]
        held = [
            NewHeld.of(ref, hold.to_dict())
            for ref, hold in found
            if hold is not None and not vetted
        ]
        work, added, held_ids = self._s.catalog.register(
            work_id, references=references, hook=hook, held=held, **details
        )
        kept = tuple(h for h in self._s.catalog.held(work_id=work_id) if h.id in held_ids)
        return Registered(work, tuple(added), len(found) - len(added) - len(kept), kept)

    def approve(self, work_id: str, held_id: int, hook: RegisterHook | None = None) -> Registered:
        """Add a held reference to its work (fingerprinted afresh from its stored bytes) and
        drop it from the held ones, in one transaction."""
        found = self._s.catalog.held(work_id=work_id, held_id=held_id)
        if not found:
            raise NotFound(f"work {quote(work_id)} has no held reference {held_id}")
        work = self._s.catalog.get_work(work_id)
        ref, _, _ = self._reference(self._s.catalog.blob(found[0].sha256), found[0].source_name)
        with self._s._lock:
            work, added, _ = self._s.catalog.register(
                work_id,
                title=work.title,
                owner=work.owner,
                aliases=work.aliases,
                references=[ref],
                must_exist=True,
                hook=hook,
                release=held_id,
            )
            self._s.catch_up(added_only=True)
        return Registered(work, tuple(added), 1 - len(added))

    def reject(self, work_id: str, held_id: int, hook: RemoveHook | None = None) -> None:
        """Drop a held reference: it never becomes part of the work."""
        self._s.catalog.reject_held(work_id, held_id, hook)

    def check_content(self, data: bytes, name: str) -> DecodedImage:
        """Decode an image meant to become a reference and refuse it now
        (:class:`NotRegistrable`) if it has too little content, before a caller records
        anything that would register it later (a notice's images)."""
        decoded = self._s.decode(data)
        rules = self._s.policy.registration
        content = registrability.content_findings(registrability.measure(decoded, rules), rules)
        if content:
            raise registrability.refuse(name, content)
        return decoded

    def _reference(
        self, image: ImageInput, name: str
    ) -> tuple[NewReference, list[registrability.Finding], registrability.Finding | None]:
        """A reference ready to store, the content rules it breaks (each refuses it) and
        the reason to hold it for an operator, if any."""
        if isinstance(image, DecodedImage):
            raise InputError("register needs the original bytes or a path, not a decoded image")
        try:
            data = image if isinstance(image, bytes) else read_capped(Path(image), self._s.limits)
            decoded = decode(data, limits=self._s.limits, max_side=self._s.settings.work_size)
        except DecodeError as exc:
            raise type(exc)(f"{name}: {exc}") from exc
        rules = self._s.policy.registration
        content = registrability.content_findings(registrability.measure(decoded, rules), rules)
        if content:  # refused: not worth fingerprinting
            return NewReference(decoded.sha256, name, decoded.format, 0, 0, b"", ()), content, None
        reference = self._fingerprinted(decoded, data, name)
        return reference, [], self.hold_reason(reference)

    def hold_reason(self, reference: NewReference) -> registrability.Finding | None:
        """Why to hold a fingerprinted reference for an operator: it looks like an image
        of the background bank (None: nothing to hold it for)."""
        by_signal: dict[str, list[StoredFingerprint]] = {}
        for fp in reference.fingerprints:
            by_signal.setdefault(fp.signal, []).append(
                StoredFingerprint(0, "", 0, fp.signal, fp.spec_id, fp.region, fp.vector, fp.quality)
            )
        return registrability.bank_finding(self._s.background, by_signal, self._s.policy)

    def _fingerprinted(self, decoded: DecodedImage, data: bytes, name: str) -> NewReference:
        return self._fingerprinted_many([(decoded, data, name)])[0]

    def _fingerprinted_many(
        self, items: Sequence[tuple[DecodedImage, bytes, str]]
    ) -> list[NewReference]:
        """References ready to store, with one model call per signal for all the images
        (and, for transparent ones, their other backgrounds): bulk registration's batches."""
        signals = self._s.signals
        images: list[Image.Image] = []
        owners: list[tuple[int, str]] = []  # (item, background or "") per image fingerprinted
        for position, (decoded, _, _) in enumerate(items):
            images.append(decoded.image)
            owners.append((position, ""))
            if decoded.is_transparent and decoded.alpha is not None:
                # Not only over white: the content must match whatever it is later shown on.
                for background, colour in EXTRA_BACKGROUNDS.items():
                    images.append(over_background(decoded.image, decoded.alpha, colour))
                    owners.append((position, background))
        found: list[list[tuple[RegionFingerprint, str]]] = [[] for _ in items]
        fingerprinted = signals.fingerprint_many(images, dihedral=False) if images else []
        for (position, background), per_image in zip(owners, fingerprinted, strict=True):
            found[position] += [
                (fp, background_variant(fp.region, background) if background else fp.region)
                for fp in per_image
            ]
        return [
            self._new_reference(decoded, data, name, found[position])
            for position, (decoded, data, name) in enumerate(items)
        ]

    def _new_reference(
        self,
        decoded: DecodedImage,
        data: bytes,
        name: str,
        found: Sequence[tuple[RegionFingerprint, str]],
    ) -> NewReference:
        signals = self._s.signals
        local = (
            ()
            if self._s.local is None
            else self._s.local.reference_features(decoded.image, over_black(decoded))
        )
        fingerprints = tuple(
            NewFingerprint(
                fp.signal,
                signals.available[fp.signal].spec_id,
                region,
                vector_bytes(fp.fingerprint),
                fp.fingerprint.quality,
            )
            for fp, region in found
        )
        return NewReference(
            decoded.sha256,
            name,
            decoded.format,
            decoded.width,
            decoded.height,
            data,
            fingerprints,
            local,
        )

    def remove(self, work_id: str, hook: RemoveHook | None = None) -> int:
        """Remove a work everywhere; returns how many fingerprints went with it."""
        with self._s._lock:
            removed = self._s.catalog.remove_work(work_id, hook)
            self._s.catch_up()
        return removed

    def remove_reference(
        self, work_id: str, reference_id: int, hook: RemoveHook | None = None
    ) -> int:
        """Remove one reference image of a work; returns how many fingerprints went."""
        with self._s._lock:
            removed = self._s.catalog.remove_reference(work_id, reference_id, hook)
            self._s.catch_up()
        return removed

    def save(self) -> None:
        with self._s._lock:
            self._s.indexes.save()
            if self._s.local is not None:
                self._s.local.votes.save()


def check_work_id(work_id: object) -> str:
    """A usable work id, or :class:`InputError` saying what one is."""
    if (
        not isinstance(work_id, str)
        or not _WORK_ID.match(work_id)
        or refused_character(work_id) is not None
        or not work_id.strip()
        or not work_id.strip(".")  # "." and ".." cannot stand in a URL path
    ):
        raise InputError(
            f"work id {quote(work_id)} must be 1-200 characters, without slashes or control "
            "characters, and not only dots"
        )
    return work_id


def over_black(decoded: DecodedImage) -> Image.Image | None:
    """A transparent image's content over black (None for an opaque image)."""
    if not decoded.is_transparent or decoded.alpha is None:
        return None
    return over_background(decoded.image, decoded.alpha, EXTRA_BACKGROUNDS[OVER_BLACK])


def _name_of(image: ImageInput, position: int) -> str:
    if isinstance(image, (str, Path)):
        return os.path.basename(str(image))
    return f"image-{position + 1}"


def read_capped(path: Path, limits: Limits) -> bytes:
    """A file's bytes, refusing it unread past the byte cap (decode reports the error)."""
    try:
        with path.open("rb") as handle:
            return handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise DecodeError(f"cannot read {path}: {exc.strerror or exc}") from None
