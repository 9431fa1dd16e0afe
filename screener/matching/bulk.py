"""Bulk registration: many works through the real registration path, in batches.

Registering one work at a time runs the model once per image and catches the indexes up
once per work. Here a batch of works is decoded, measured and fingerprinted together (one
model call per signal for every image of the batch), each work is then written to the
catalog in its own transaction, as :meth:`Registry.register` writes it, and the indexes
catch up once per batch. The catalog stays the truth: a crash in the middle of a batch
leaves whole works in the catalog and indexes that catch up from its high-water mark on
the next start.

An image that cannot be decoded or has too little content is skipped (and reported), not
fatal to its work, as ``screener works import`` always did; a work whose catalog write
fails (say, an id taken by a different owner's work) is reported and the rest go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from screener.core.decode import DecodedImage
from screener.core.errors import InputError, ScreenerError, quote
from screener.matching import registrability
from screener.matching.pipeline import Registered, Screener, check_work_id
from screener.matching.registry import read_capped
from screener.store.catalog import NewReference, RegisterHook

DEFAULT_BATCH = 32


@dataclass(frozen=True)
class BulkWork:
    """One work to register: its id and reference images (paths or bytes)."""

    work_id: str
    images: tuple[Path | bytes, ...]
    names: tuple[str, ...] = ()  # the images' names; default: file names or image-<n>
    title: str | None = None
    owner: str = ""


@dataclass(frozen=True)
class BulkOutcome:
    """What became of one work: registered, or the error that stopped it, and each image
    skipped with its reason."""

    work_id: str
    registered: Registered | None = None
    error: ScreenerError | None = None
    skipped: tuple[tuple[str, ScreenerError], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Image:
    work: int
    name: str
    data: bytes
    decoded: DecodedImage


def batches(works: Iterable[BulkWork], size: int) -> Iterator[list[BulkWork]]:
    if size < 1:
        raise InputError(f"a batch holds at least one work, not {size}")
    it = iter(works)
    while chunk := list(islice(it, size)):
        yield chunk


def register_many(
    screener: Screener,
    works: Iterable[BulkWork],
    *,
    batch: int = DEFAULT_BATCH,
    hook: Callable[[str], RegisterHook | None] | None = None,
    progress: Callable[[BulkOutcome], None] | None = None,
) -> list[BulkOutcome]:
    """Register ``works`` in batches of ``batch``; one outcome per work, in order.

    ``hook(work_id)`` gives the hook run inside each work's transaction (the audit log's);
    ``progress`` hears of each work as it is written.
    """
    outcomes: list[BulkOutcome] = []
    for chunk in batches(works, batch):
        done = _register_batch(screener, chunk, hook)
        for outcome in done:
            if progress is not None:
                progress(outcome)
        outcomes += done
    return outcomes


def _name(image: Path | bytes, names: Sequence[str], position: int) -> str:
    if position < len(names):
        return names[position]
    return image.name if isinstance(image, Path) else f"image-{position}"


def _prepare(
    screener: Screener, position: int, work: BulkWork
) -> tuple[list[_Image], list[tuple[str, ScreenerError]]]:
    """Decode and measure a work's images once; those that fail are skipped."""
    good: list[_Image] = []
    skipped: list[tuple[str, ScreenerError]] = []
    for i, image in enumerate(work.images):
        name = _name(image, work.names, i)
        try:
            data = image if isinstance(image, bytes) else read_capped(image, screener.limits)
            decoded = screener.registry.check_content(data, name)
        except ScreenerError as exc:
            skipped.append((name, exc))
            continue
        good.append(_Image(position, name, data, decoded))
    return good, skipped


def _register_batch(
    screener: Screener, chunk: Sequence[BulkWork], hook: Callable[[str], RegisterHook | None] | None
) -> list[BulkOutcome]:
    prepared: list[_Image] = []
    skipped: list[list[tuple[str, ScreenerError]]] = []
    errors: dict[int, ScreenerError] = {}
    for position, work in enumerate(chunk):
        try:
            check_work_id(work.work_id)
        except ScreenerError as exc:
            errors[position] = exc
            skipped.append([])
            continue
        good, bad = _prepare(screener, position, work)
        prepared += good
        skipped.append(bad)
        if not good:
            errors[position] = InputError(f"work {quote(work.work_id)}: no usable images")
    references = screener.registry._fingerprinted_many(
        [(image.decoded, image.data, image.name) for image in prepared]
    )
    per_work: dict[int, list[tuple[NewReference, registrability.Finding | None]]] = {}
    for image, reference in zip(prepared, references, strict=True):
        per_work.setdefault(image.work, []).append(
            (reference, screener.registry.hold_reason(reference))
        )
    outcomes: list[BulkOutcome] = []
    with screener._lock:
        for position, work in enumerate(chunk):
            lost = tuple(skipped[position])
            if position in errors:
                outcomes.append(BulkOutcome(work.work_id, error=errors[position], skipped=lost))
                continue
            try:
                registered = _write(screener, work, per_work[position], hook)
            except ScreenerError as exc:
                outcomes.append(BulkOutcome(work.work_id, error=exc, skipped=lost))
                continue
            outcomes.append(BulkOutcome(work.work_id, registered, skipped=lost))
        screener.catch_up(added_only=True)  # once per batch, not per work
    return outcomes


def _write(
    screener: Screener,
    work: BulkWork,
    found: Sequence[tuple[NewReference, registrability.Finding | None]],
    hook: Callable[[str], RegisterHook | None] | None,
) -> Registered:
    """One work's catalog transaction, as :meth:`Registry.register` writes it."""
    return screener.registry.store(
        work.work_id,
        found,
        hook=None if hook is None else hook(work.work_id),
        title=work.title or work.work_id,
        owner=work.owner,
        aliases=[],
    )
