"""The background bank: SSCD descriptors of generic images, for score normalisation.

Raw SSCD cosines are not comparable across queries: flat drawings on white, logos and
clip art sit close to each other, so an unrelated drawing can score as high against a
registered drawing as a real copy of a photograph does. As the SSCD authors recommend,
the similarity of the query to its k-th nearest neighbour in a bank of generic images
measures how "generic" the query is; subtracting it gives ``sscd_norm_cosine``, which
is high only where the query is closer to the work than to ordinary pictures of its kind.

The bank also keeps every bank image's query-side fingerprints (each signal, the whole
image, its regions and, for the hashes, its rotations and flips), so that each registered
work gets a *generic level* per signal: the value that the bank's k-th closest image
reaches against it, computed exactly as a check computes a query's (`levels`). A work
drawn in a common style (a glyph on white, a round logo) has ordinary pictures close to
it, and its evidence ramps start past that level (see `screener.core.fusion`), so a generic
work needs stronger evidence than a distinctive one.

The bank lives in ``<data_dir>/background/`` (``sscd.npy``, ``signals.npz`` and
``manifest.json``), is built with ``screener background build DIR`` from any folder of
generic images (never the registered works: images that match one are left out), and its
digest is part of every verdict's index version, so a verdict names the bank that
normalised it. A bank built before ``signals.npz`` existed still normalises SSCD; it
gives no generic levels until it is rebuilt.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from screener.core.decode import Limits, decode_file
from screener.core.errors import ConfigurationError, InputError
from screener.core.regions import WHOLE
from screener.matching.candidates import hamming
from screener.matching.signals import (
    EVIDENCE_NAME,
    REGION_EVIDENCE_NAME,
    RegionFingerprint,
    SignalSet,
    is_whole,
)
from screener.store.catalog import StoredFingerprint

log = logging.getLogger(__name__)

VECTORS = "sscd.npy"
SIGNALS = "signals.npz"
MANIFEST = "manifest.json"
# A bank image this close (SSCD cosine; the default policy gives full SSCD evidence from
# 0.7) to a registered reference is a copy of a work, not a generic image: left out.
REGISTERED_COSINE = 0.7
MIN_IMAGES = 20  # fewer, and the k-th neighbour says nothing


@dataclass(frozen=True)
class Rows:
    """Every bank image's query-side fingerprints of one signal."""

    matrix: npt.NDArray[Any]  # packed bits (uint8) or float32 vectors, one per row
    image: npt.NDArray[np.int64]  # the bank image each row belongs to
    whole: npt.NDArray[np.bool_]  # the whole image or a rotation or flip of it
    quality: npt.NDArray[np.float32]  # NaN where the fingerprinter gives none

    @property
    def binary(self) -> bool:
        return bool(self.matrix.dtype == np.uint8)


@dataclass(frozen=True)
class Bank:
    vectors: npt.NDArray[np.float32]
    spec_id: str
    digest: str
    source: str
    built_at: str
    rows: Mapping[str, Rows] = field(default_factory=dict)  # by signal
    specs: Mapping[str, str] = field(default_factory=dict)  # each signal's spec id

    @property
    def count(self) -> int:
        return int(self.vectors.shape[0])

    def kth_similarity(self, queries: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.float32]:
        """Each query's cosine to its k-th nearest bank image (k clipped to the bank)."""
        sims = queries.astype(np.float32) @ self.vectors.T
        kk = min(max(1, k), self.count)
        part = np.partition(-sims, kk - 1, axis=1)[:, kk - 1]
        out: npt.NDArray[np.float32] = (-part).astype(np.float32)
        return out

    def levels(
        self,
        signal: str,
        refs: Sequence[StoredFingerprint],
        k: int,
        min_quality: float | None = None,
    ) -> dict[str, dict[str, float]]:
        """Each work's generic level of one signal, by evidence name: the value of the
        bank image that is the k-th closest to the work (k clipped to the images that
        give the evidence at all), each bank image scored as a check scores a query
        against ``refs`` (see `closest`)."""
        works: dict[str, list[StoredFingerprint]] = {}
        for ref in refs:
            works.setdefault(ref.work_id, []).append(ref)
        out: dict[str, dict[str, float]] = {}
        for work_id, own in works.items():
            for name, values in self.closest(signal, own, min_quality).items():
                finite = values[np.isfinite(values)]
                if not len(finite):
                    continue
                closeness = -finite if name.endswith("_hamming") else finite
                kk = min(max(1, k), len(finite))
                level = float(-np.partition(-closeness, kk - 1)[kk - 1])
                out.setdefault(name, {})[work_id] = -level if name.endswith("_hamming") else level
        return out

    def closest(
        self,
        signal: str,
        refs: Sequence[StoredFingerprint],
        min_quality: float | None = None,
    ) -> dict[str, npt.NDArray[np.float64]]:
        """Each bank image's best value of one signal against ``refs`` taken as one work,
        by evidence name (NaN where the image gives none), scored as a check scores a
        query: whole against whole; a region against the whole of the other; PDQ rows and
        references under ``min_quality`` left out."""
        rows = self.rows.get(signal)
        if min_quality is not None:
            refs = [r for r in refs if (r.quality or 0.0) >= min_quality]
        if rows is None or not refs:
            return {}
        keep = np.ones(len(rows.image), dtype=bool)
        if min_quality is not None:
            keep = np.nan_to_num(rows.quality, nan=0.0) >= min_quality
        matrix, image, whole = rows.matrix[keep], rows.image[keep], rows.whole[keep]
        stored = np.frombuffer(b"".join(r.vector for r in refs), dtype=matrix.dtype)
        stored = stored.reshape(len(refs), -1)
        if rows.binary:
            # Closeness as negated Hamming distance, so that larger is closer throughout.
            closeness = -hamming(matrix, stored).astype(np.float64)
        else:
            closeness = (matrix @ stored.T).astype(np.float64)
        ref_whole = np.array([is_whole(r.region) for r in refs])
        cols = np.arange(len(refs))
        whole_cols, region_cols = cols[ref_whole], cols[~ref_whole]
        pairs = {
            EVIDENCE_NAME[signal]: [(whole, whole_cols)],
            REGION_EVIDENCE_NAME[signal]: [(~whole, whole_cols), (whole, region_cols)],
        }
        out: dict[str, npt.NDArray[np.float64]] = {}
        for name, parts in pairs.items():
            best = np.full(self.count, -np.inf)
            for row_mask, part_cols in parts:
                if not row_mask.any() or not len(part_cols):
                    continue
                per_row = closeness[np.ix_(row_mask, part_cols)].max(axis=1)
                np.maximum.at(best, image[row_mask], per_row)
            if np.isfinite(best).any():
                best[~np.isfinite(best)] = np.nan
                out[name] = -best if rows.binary else best
        return out


def load(folder: Path, spec_id: str, specs: Mapping[str, str] | None = None) -> Bank | None:
    """The bank in ``folder``; None when there is none. A damaged bank or one made with
    another SSCD spec is a :class:`ConfigurationError` that says how to rebuild it.
    ``specs`` (the running signals' spec ids) picks the per-signal rows that generic
    levels may use: rows made with another spec are left out, with a warning."""
    manifest_path, vectors_path = folder / MANIFEST, folder / VECTORS
    if not manifest_path.exists():
        return None
    rebuild = "rebuild it with `screener background build DIR`"
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
        vectors = np.load(vectors_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"background bank in {folder} is unreadable ({exc}); {rebuild}"
        ) from None
    digest = _digest(vectors)
    if manifest.get("sha256") != digest or vectors.ndim != 2 or vectors.dtype != np.float32:
        raise ConfigurationError(f"background bank in {folder} is damaged; {rebuild}")
    if manifest.get("spec_id") != spec_id:
        raise ConfigurationError(
            f"background bank in {folder} was made with {manifest.get('spec_id')!r}, the "
            f"screener runs {spec_id!r}; {rebuild}"
        )
    rows: dict[str, Rows] = {}
    built_specs: dict[str, str] = dict(manifest.get("signals", {}))
    if built_specs:
        try:
            data = (folder / SIGNALS).read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"background bank in {folder} is unreadable ({exc}); {rebuild}"
            ) from None
        if hashlib.sha256(data).hexdigest() != manifest.get("signals_sha256"):
            raise ConfigurationError(f"background bank in {folder} is damaged; {rebuild}")
        digest = hashlib.sha256(f"{digest}+{manifest['signals_sha256']}".encode()).hexdigest()
        rows = _read_rows(data, built_specs, vectors.shape[0], f"{folder}; {rebuild}")
        for signal in list(rows):
            if specs is not None and specs.get(signal) != built_specs[signal]:
                log.warning(
                    "background bank in %s holds %s made with %r, the screener runs %r: no "
                    "generic levels for it until the bank is rebuilt",
                    folder,
                    signal,
                    built_specs[signal],
                    specs.get(signal),
                )
                del rows[signal]
    else:
        log.warning(
            "background bank in %s predates generic levels: it normalises SSCD only; "
            "rebuild it with `screener background build DIR` for per-work levels",
            folder,
        )
    return Bank(
        vectors,
        spec_id,
        digest,
        str(manifest.get("source", "")),
        manifest["built_at"],
        rows,
        {s: built_specs[s] for s in rows},
    )


def packaged(spec_id: str, specs: Mapping[str, str] | None = None) -> Bank | None:
    """The bank shipped with the package (fingerprints of generic icons, see its
    manifest's ``source``), used while a data directory has none of its own; None, with a
    warning, where the running SSCD is another model than the one it was made with."""
    folder = Path(str(resources.files("screener.data").joinpath("background")))
    try:
        return load(folder, spec_id, specs)
    except ConfigurationError as exc:
        log.warning("the packaged background bank is not used: %s", exc)
        return None


def _read_rows(data: bytes, specs: Mapping[str, str], count: int, where: str) -> dict[str, Rows]:
    """The per-signal rows of a ``signals.npz`` whose digest was already checked."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            rows = {
                signal: Rows(
                    _matrix(archive[f"{signal}.matrix"]),
                    archive[f"{signal}.image"].astype(np.int64),
                    archive[f"{signal}.whole"].astype(bool),
                    archive[f"{signal}.quality"].astype(np.float32),
                )
                for signal in specs
            }
    except (KeyError, OSError, ValueError) as exc:
        raise ConfigurationError(f"background bank in {where} ({exc})") from None
    for signal, part in rows.items():
        n = part.matrix.shape[0] if part.matrix.ndim == 2 else -1
        if not (
            len(part.image) == len(part.whole) == len(part.quality) == n
            and part.matrix.dtype in (np.uint8, np.float32)
            and (n == 0 or (part.image.min() >= 0 and part.image.max() < count))
        ):
            raise ConfigurationError(f"background bank in {where} (bad {signal} rows)")
    return rows


def _matrix(stored: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Dense rows (kept in half precision) as float32; anything else as it is (packed
    bits, or a type the caller then refuses)."""
    if stored.dtype in (np.float16, np.float32):
        return stored.astype(np.float32)
    return stored


def _digest(vectors: npt.NDArray[Any]) -> str:
    return hashlib.sha256(np.ascontiguousarray(vectors).tobytes()).hexdigest()


@dataclass(frozen=True)
class BuildReport:
    count: int
    unreadable: list[str]
    registered: int  # images left out because they match a registered work
    folder: Path


def build(
    images: Iterable[Path],
    signals: SignalSet,
    folder: Path,
    *,
    source: str,
    limits: Limits,
    work_size: int,
    is_registered: Callable[[npt.NDArray[np.float32]], bool],
    progress: Callable[[int], None] | None = None,
    batch: int = 16,
) -> BuildReport:
    """Fingerprint ``images`` as a check fingerprints a query (every signal, regions,
    rotations and flips) and write the bank atomically (the old one stays in place until
    the new one is complete)."""
    sscd = signals.available.get("sscd")
    if sscd is None:
        raise ConfigurationError("the background bank normalises SSCD, which is not in use")
    kept: list[list[RegionFingerprint]] = []
    unreadable: list[str] = []
    registered = 0
    pending: list[Any] = []

    def flush() -> None:
        nonlocal registered
        if not pending:
            return
        for fingerprints in signals.fingerprint_many(pending, dihedral=True):
            if is_registered(_whole_sscd(fingerprints)):
                registered += 1
            else:
                kept.append(fingerprints)
        if progress:
            progress(len(pending))
        pending.clear()

    for path in images:
        try:
            pending.append(decode_file(path, limits=limits, max_side=work_size).image)
        except InputError as exc:
            unreadable.append(f"{path}: {exc}")
            if progress:
                progress(1)
            continue
        if len(pending) >= batch:
            flush()
    flush()
    if len(kept) < MIN_IMAGES:
        raise InputError(
            f"a background bank needs at least {MIN_IMAGES} usable generic images; got "
            f"{len(kept)} ({len(unreadable)} unreadable, {registered} matching registered works)"
        )
    vectors = np.stack([_whole_sscd(f) for f in kept]).astype(np.float32)
    arrays: dict[str, npt.NDArray[Any]] = {}
    for signal, fingerprinter in signals.available.items():
        found = [
            (position, fp)
            for position, fingerprints in enumerate(kept)
            for fp in fingerprints
            if fp.signal == signal
        ]
        # Dense rows are stored in half precision (read back as float32): cosines move by
        # about 1e-3, far below what a level is used for, and the bank is half the size.
        dtype = np.uint8 if fingerprinter.kind == "binary" else np.float16
        arrays[f"{signal}.matrix"] = np.stack(
            [np.asarray(fp.fingerprint.vector, dtype=dtype) for _, fp in found]
        )
        arrays[f"{signal}.image"] = np.array([p for p, _ in found], dtype=np.int32)
        arrays[f"{signal}.whole"] = np.array([is_whole(fp.region) for _, fp in found])
        arrays[f"{signal}.quality"] = np.array(
            [np.nan if (q := fp.fingerprint.quality) is None else q for _, fp in found],
            dtype=np.float32,
        )
    packed = io.BytesIO()
    np.savez(packed, allow_pickle=False, **arrays)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "spec_id": sscd.spec_id,
        "count": int(vectors.shape[0]),
        "dim": int(vectors.shape[1]),
        "sha256": _digest(vectors),
        "signals": signals.specs,
        "signals_sha256": hashlib.sha256(packed.getvalue()).hexdigest(),
        "source": source,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    scratch_vectors = folder / f".{VECTORS}.tmp"
    with scratch_vectors.open("wb") as handle:
        np.save(handle, vectors, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())
    scratch_signals = folder / f".{SIGNALS}.tmp"
    with scratch_signals.open("wb") as handle:
        handle.write(packed.getvalue())
        handle.flush()
        os.fsync(handle.fileno())
    scratch_manifest = folder / f".{MANIFEST}.tmp"
    scratch_manifest.write_text(json.dumps(manifest, indent=2), "utf-8")
    # The manifest names the files' digests, so a crash between the renames leaves a
    # bank that `load` refuses as damaged, never one that silently mismatches.
    os.replace(scratch_vectors, folder / VECTORS)
    os.replace(scratch_signals, folder / SIGNALS)
    os.replace(scratch_manifest, folder / MANIFEST)
    return BuildReport(int(vectors.shape[0]), unreadable, registered, folder)


def _whole_sscd(fingerprints: Sequence[RegionFingerprint]) -> npt.NDArray[np.float32]:
    """The SSCD descriptor of the whole image (not a region, rotation or flip)."""
    vector = next(f for f in fingerprints if f.signal == "sscd" and f.region == WHOLE)
    return np.asarray(vector.fingerprint.vector, dtype=np.float32)
