"""Export every index to one file, and import such a file into the configured backend.

The file is a zip archive (stored, not compressed: vectors do not compress) holding, per
signal, the fingerprint ids (``<signal>.ids``, little-endian int64, ascending) and vectors
(``<signal>.vectors``: float32 rows or packed bits), and ``manifest.json``: the format and
version, and per signal its spec (id, dimension, metric), count, the catalog log position
the index reflected (its high-water mark), the structure it came from, and the sha256 of
each member. It is written to a temporary file beside the target and renamed.

Import refuses, before it writes anything, a file that is not such an archive, is
truncated or altered (zip CRCs and the sha256 digests), was made for another spec (model)
than the one configured, or disagrees with the catalog: an id the catalog does not have
(and did not remove after the file's mark), a catalog fingerprint the file lacks (and that
was not added after it), or a vector that differs from the catalog's. Then each index is
made to hold exactly the file's fingerprints and replays the catalog log after the mark,
so an import into an installation that kept working after the export loses nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt

from screener.core.errors import IndexInconsistent, InputError
from screener.core.settings import Settings
from screener.index import IndexSpec
from screener.matching.signal_indexes import IndexSet, MilvusTarget
from screener.matching.signals import SignalSet
from screener.store.catalog import Catalog

FORMAT: Final = "screener-index-export"
VERSION: Final = 1
MANIFEST: Final = "manifest.json"
BATCH: Final = 10_000
_ID_DTYPE: Final = np.dtype("<i8")

#: ``progress(description, total)`` starts a task and returns its ``advance(n)``.
Progress = Callable[[str, int], Callable[[int], None]]


class ExportFileError(InputError):
    """An export file that cannot be imported here (the message says why)."""


@dataclass(frozen=True)
class SignalEntry:
    """One signal's section of the manifest."""

    signal: str
    spec: IndexSpec
    count: int
    high_water: int
    kind: str
    ids_sha256: str
    vectors_sha256: str

    @property
    def row_bytes(self) -> int:
        return self.spec.dim // 8 if self.spec.metric == "hamming" else self.spec.dim * 4

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(np.uint8) if self.spec.metric == "hamming" else np.dtype("<f4")

    def to_json(self) -> dict[str, Any]:
        return {
            "spec_id": self.spec.spec_id,
            "dim": self.spec.dim,
            "metric": self.spec.metric,
            "count": self.count,
            "high_water": self.high_water,
            "kind": self.kind,
            "ids_sha256": self.ids_sha256,
            "vectors_sha256": self.vectors_sha256,
        }


@dataclass(frozen=True)
class Summary:
    """What an export or import did: per signal, (fingerprints, log position)."""

    path: Path
    signals: dict[str, tuple[int, int]]
    skipped: tuple[str, ...] = ()


# -- export ---------------------------------------------------------------------------------


def export_indexes(indexes: IndexSet, path: Path, progress: Progress | None = None) -> Summary:
    """Write every index of ``indexes`` (opened and caught up) to ``path``.

    The ids come from each index and the vectors from the catalog; an index that
    disagrees with the catalog is refused (``screener index rebuild`` repairs it).
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name, e.g. {path / 'indexes.zip'}")
    if not path.parent.is_dir():
        raise InputError(f"folder {path.parent} does not exist")
    catalog = indexes.catalog
    entries: list[SignalEntry] = []
    written: dict[str, tuple[int, int]] = {}
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for signal in sorted(indexes.specs):
                entry = _export_signal(indexes, catalog, signal, archive, progress)
                entries.append(entry)
                written[signal] = (entry.count, entry.high_water)
            manifest = {
                "format": FORMAT,
                "version": VERSION,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "catalog_high_water": catalog.high_water(),
                "signals": {e.signal: e.to_json() for e in entries},
            }
            archive.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
        with open(tmp, "rb") as done:
            os.fsync(done.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return Summary(path, written)


def _export_signal(
    indexes: IndexSet,
    catalog: Catalog,
    signal: str,
    archive: zipfile.ZipFile,
    progress: Progress | None,
) -> SignalEntry:
    spec, index, mark = indexes.specs[signal], indexes.indexes[signal], indexes.marks[signal]
    held = index.ids()
    unknown, lacking, removed = _disagreement(catalog, signal, spec, held, mark)
    if unknown or lacking:
        raise IndexInconsistent(
            f"the {signal} index disagrees with the catalog ({len(unknown)} ids the catalog "
            f"does not have, {len(lacking)} fingerprints it lacks): run `screener index "
            "rebuild` first"
        )
    # Removed after the mark: the catalog has no vector for them, and import replays the
    # removal anyway.
    keep = held[~np.isin(held, np.asarray(sorted(removed), dtype=np.int64))]
    advance = progress(f"exporting {signal}", len(keep)) if progress else None
    ids_hash, vectors_hash = hashlib.sha256(), hashlib.sha256()
    ids_hash.update(keep.astype(_ID_DTYPE).tobytes())
    archive.writestr(f"{signal}.ids", keep.astype(_ID_DTYPE).tobytes())
    count = 0
    with archive.open(f"{signal}.vectors", "w", force_zip64=True) as out:
        for batch in catalog.iter_fingerprints(signal, spec.spec_id, BATCH):
            chosen = [v for i, v in batch if _contains(keep, i)]
            data = b"".join(chosen)
            out.write(data)
            vectors_hash.update(data)
            count += len(chosen)
            if advance:
                advance(len(chosen))
    if count != len(keep):  # the catalog lost fingerprints while we read it
        raise IndexInconsistent(
            f"the catalog changed while {signal} was exported ({count} of {len(keep)} "
            "vectors found); export again"
        )
    return SignalEntry(
        signal,
        spec,
        len(keep),
        mark,
        index.kind,
        ids_hash.hexdigest(),
        vectors_hash.hexdigest(),
    )


def _contains(sorted_ids: npt.NDArray[np.int64], value: int) -> bool:
    at = int(np.searchsorted(sorted_ids, value))
    return at < len(sorted_ids) and int(sorted_ids[at]) == value


def _disagreement(
    catalog: Catalog, signal: str, spec: IndexSpec, ids: npt.NDArray[np.int64], mark: int
) -> tuple[set[int], set[int], set[int]]:
    """Ids of an index at log position ``mark`` against the catalog now: (ids the catalog
    does not have and did not remove after ``mark``, catalog ids neither in ``ids`` nor
    added after ``mark``, ids removed after ``mark``)."""
    final: dict[int, str] = {}
    for entry in catalog.log_since(signal, spec.spec_id, mark):
        final[entry.fingerprint_id] = entry.op
    removed = {i for i, op in final.items() if op == "remove"}
    added = {i for i, op in final.items() if op == "add"}
    have = set(ids.tolist())
    want = set(catalog.fingerprint_ids(signal, spec.spec_id))
    return have - want - removed, want - have - added, removed


# -- import ---------------------------------------------------------------------------------


class ExportFile:
    """An export file opened for reading; every read is checked against the manifest."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ExportFileError(f"{self.path} is not a file")
        try:
            self._zip = zipfile.ZipFile(self.path)
            raw = self._zip.read(MANIFEST)
        except (zipfile.BadZipFile, KeyError, OSError, EOFError) as exc:
            raise ExportFileError(
                f"{self.path} is not a complete index export (truncated or not made by "
                f"`screener index export`): {exc}"
            ) from exc
        self.created, self.catalog_high_water, self.entries = _parse_manifest(self.path, raw)
        for entry in self.entries.values():
            for member, size in (
                (f"{entry.signal}.ids", entry.count * 8),
                (f"{entry.signal}.vectors", entry.count * entry.row_bytes),
            ):
                try:
                    info = self._zip.getinfo(member)
                except KeyError:
                    raise ExportFileError(f"{self.path} lacks {member}") from None
                if info.file_size != size:
                    raise ExportFileError(
                        f"{self.path}: {member} holds {info.file_size} bytes, "
                        f"the manifest says {size}"
                    )

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> ExportFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ids(self, entry: SignalEntry) -> npt.NDArray[np.int64]:
        data = self._read_all(f"{entry.signal}.ids", entry.ids_sha256)
        ids = np.frombuffer(data, dtype=_ID_DTYPE).astype(np.int64)
        if len(ids) and (np.any(np.diff(ids) <= 0) or ids[0] < 0):
            raise ExportFileError(f"{self.path}: {entry.signal} ids are not ascending and unique")
        return ids

    def batches(
        self, entry: SignalEntry, ids: npt.NDArray[np.int64]
    ) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[Any]]]:
        """(ids, vectors) in batches, id order; the digest is checked at the end."""
        digest = hashlib.sha256()
        with self._open(f"{entry.signal}.vectors") as stream:
            for start in range(0, len(ids), BATCH):
                part = ids[start : start + BATCH]
                data = self._read(stream, len(part) * entry.row_bytes, f"{entry.signal}.vectors")
                digest.update(data)
                vectors = np.frombuffer(data, dtype=entry.dtype)
                width = entry.row_bytes if entry.spec.metric == "hamming" else entry.spec.dim
                yield part, vectors.reshape(len(part), width)
        if digest.hexdigest() != entry.vectors_sha256:
            raise ExportFileError(
                f"{self.path}: {entry.signal} vectors fail their sha256 (the file was altered)"
            )

    def _open(self, member: str) -> IO[bytes]:
        try:
            return self._zip.open(member)
        except (zipfile.BadZipFile, KeyError, OSError) as exc:
            raise ExportFileError(f"{self.path}: cannot read {member}: {exc}") from exc

    def _read(self, stream: IO[bytes], size: int, what: str) -> bytes:
        try:
            data = stream.read(size)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ExportFileError(f"{self.path}: {what} is damaged: {exc}") from exc
        if len(data) != size:
            raise ExportFileError(f"{self.path}: {what} is truncated")
        return data

    def _read_all(self, member: str, sha256: str) -> bytes:
        with self._open(member) as stream:
            data = self._read(stream, self._zip.getinfo(member).file_size, member)
            with contextlib.suppress(zipfile.BadZipFile, OSError, EOFError):
                stream.read()  # reaching the end checks the member's CRC
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ExportFileError(f"{self.path}: {member} fails its sha256 (the file was altered)")
        return data


def _parse_manifest(path: Path, raw: bytes) -> tuple[str, int, dict[str, SignalEntry]]:
    try:
        doc = json.loads(raw)
        if doc.get("format") != FORMAT:
            raise ExportFileError(f"{path} is not an index export (format {doc.get('format')!r})")
        if doc.get("version") != VERSION:
            raise ExportFileError(
                f"{path} is export version {doc.get('version')!r}; this screener reads {VERSION}"
            )
        entries = {}
        for signal, s in doc["signals"].items():
            spec = IndexSpec(str(s["spec_id"]), int(s["dim"]), s["metric"])
            if spec.metric not in ("ip", "hamming") or spec.dim <= 0:
                raise ValueError(f"bad spec {spec}")
            counts = int(s["count"]), int(s["high_water"])
            if min(counts) < 0:
                raise ValueError(f"negative count or mark for {signal}")
            entries[str(signal)] = SignalEntry(
                str(signal),
                spec,
                counts[0],
                counts[1],
                str(s["kind"]),
                str(s["ids_sha256"]),
                str(s["vectors_sha256"]),
            )
        return str(doc["created"]), int(doc["catalog_high_water"]), entries
    except ExportFileError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ExportFileError(f"{path}: the manifest cannot be read: {exc}") from exc


@contextmanager
def indexes_to_import(settings: Settings) -> Iterator[tuple[IndexSet, dict[str, str]]]:
    """The configured indexes, not opened, and the signals that cannot run (name: why).

    Opening would first bring every index up to date from the catalog's log (for a
    fresh Milvus collection, the whole log), which the import then replaces.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(settings.resolved_database_url)
    try:
        signals = SignalSet(settings, region_min_quality=0.0)
        indexes = IndexSet(
            catalog,
            signals.available,
            settings.index_dir,
            settings.index_structure,
            milvus=MilvusTarget.from_settings(settings),
        )
        indexes.directory.mkdir(parents=True, exist_ok=True)
        yield indexes, signals.missing
    finally:
        catalog.close()


def import_indexes(indexes: IndexSet, path: Path, progress: Progress | None = None) -> Summary:
    """Load the export at ``path`` into ``indexes`` (opened or not) after checking all of
    it."""
    catalog = indexes.catalog
    with ExportFile(path) as export:
        missing = sorted(set(indexes.specs) - set(export.entries))
        if missing:
            raise ExportFileError(
                f"{export.path} holds no index for {missing} (it has "
                f"{sorted(export.entries)}); export with the same signals, or rebuild them "
                "with `screener index rebuild`"
            )
        for signal, spec in indexes.specs.items():
            found = export.entries[signal].spec
            if found != spec:
                raise ExportFileError(
                    f"{export.path}: its {signal} index was made for {found.spec_id} "
                    f"({found.dim}-d {found.metric}), but this installation uses "
                    f"{spec.spec_id} ({spec.dim}-d {spec.metric}); rebuild from the catalog "
                    "instead"
                )
        if export.catalog_high_water > catalog.high_water():
            raise ExportFileError(
                f"{export.path} was exported at catalog log position "
                f"{export.catalog_high_water}, past this catalog's {catalog.high_water()}: "
                "it comes from another catalog"
            )
        ids = {}
        for signal in sorted(indexes.specs):  # everything is checked before any write
            entry = export.entries[signal]
            ids[signal] = export.ids(entry)
            _check_against_catalog(export, catalog, entry, ids[signal], progress)
        done = {}
        for signal in sorted(indexes.specs):
            entry = export.entries[signal]
            advance = progress(f"importing {signal}", entry.count) if progress else None
            size = indexes.replace(
                signal, export.batches(entry, ids[signal]), entry.high_water, advance
            )
            done[signal] = (size, indexes.marks[signal])
        skipped = tuple(sorted(set(export.entries) - set(indexes.specs)))
    return Summary(Path(path), done, skipped)


def _check_against_catalog(
    export: ExportFile,
    catalog: Catalog,
    entry: SignalEntry,
    ids: npt.NDArray[np.int64],
    progress: Progress | None,
) -> None:
    signal = entry.signal
    unknown, lacking, _ = _disagreement(catalog, signal, entry.spec, ids, entry.high_water)
    if unknown or lacking:
        parts = []
        if unknown:
            parts.append(f"{len(unknown)} ids the catalog does not have (e.g. {min(unknown)})")
        if lacking:
            parts.append(f"{len(lacking)} catalog fingerprints it lacks (e.g. {min(lacking)})")
        raise ExportFileError(
            f"{export.path}: the {signal} index disagrees with the catalog: "
            f"{' and '.join(parts)}; it was exported from another installation or another "
            "catalog (use `screener index rebuild` to build from this catalog)"
        )
    advance = progress(f"checking {signal}", entry.count) if progress else None
    stored = _catalog_rows(catalog, signal, entry.spec)
    current: tuple[int, bytes] | None = next(stored, None)
    differ = 0
    for part, vectors in export.batches(entry, ids):
        for fid, row in zip(part.tolist(), vectors, strict=True):
            while current is not None and current[0] < fid:  # both run in id order
                current = next(stored, None)
            if current is not None and current[0] == fid and current[1] != row.tobytes():
                differ += 1
        if advance:
            advance(len(part))
    if differ:
        raise ExportFileError(
            f"{export.path}: {differ} {signal} vectors differ from the catalog's; it was "
            "exported from another installation"
        )


def _catalog_rows(catalog: Catalog, signal: str, spec: IndexSpec) -> Iterator[tuple[int, bytes]]:
    for batch in catalog.iter_fingerprints(signal, spec.spec_id, BATCH):
        yield from batch


__all__ = [
    "ExportFile",
    "ExportFileError",
    "Summary",
    "export_indexes",
    "import_indexes",
    "indexes_to_import",
]
