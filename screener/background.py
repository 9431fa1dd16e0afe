"""The background bank: SSCD descriptors of generic images, for score normalisation.

Raw SSCD cosines are not comparable across queries: flat drawings on white, logos and
clip art sit close to each other, so an unrelated drawing can score as high against a
registered drawing as a real copy of a photograph does. As the SSCD authors recommend,
the similarity of the query to its k-th nearest neighbour in a bank of generic images
measures how "generic" the query is; subtracting it gives ``sscd_norm_cosine``, which
is high only where the query is closer to the work than to ordinary pictures of its kind.

The bank lives in ``<data_dir>/background/`` (``sscd.npy`` and ``manifest.json``), is
built with ``screener background build DIR`` from any folder of generic images (never
the registered works: images that match one are left out), and its digest is part of
every verdict's index version, so a verdict names the bank that normalised it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models import Fingerprinter
from screener.decode import Limits, decode_file
from screener.errors import ConfigurationError, InputError

VECTORS = "sscd.npy"
MANIFEST = "manifest.json"
# A bank image this close (SSCD cosine; the default policy gives full SSCD evidence from
# 0.7) to a registered reference is a copy of a work, not a generic image: left out.
REGISTERED_COSINE = 0.7
MIN_IMAGES = 20  # fewer, and the k-th neighbour says nothing


@dataclass(frozen=True)
class Bank:
    vectors: npt.NDArray[np.float32]
    spec_id: str
    digest: str
    source: str
    built_at: str

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


def load(folder: Path, spec_id: str) -> Bank | None:
    """The bank in ``folder``; None when there is none. A damaged bank or one made with
    another SSCD spec is a :class:`ConfigurationError` that says how to rebuild it."""
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
    return Bank(vectors, spec_id, digest, str(manifest.get("source", "")), manifest["built_at"])


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
    fingerprinter: Fingerprinter,
    folder: Path,
    *,
    source: str,
    limits: Limits,
    work_size: int,
    is_registered: Callable[[npt.NDArray[np.float32]], bool],
    progress: Callable[[int], None] | None = None,
    batch: int = 16,
) -> BuildReport:
    """Fingerprint ``images`` and write the bank atomically (the old one stays in place
    until the new one is complete)."""
    rows: list[npt.NDArray[np.float32]] = []
    unreadable: list[str] = []
    registered = 0
    pending: list[Any] = []

    def flush() -> None:
        nonlocal registered
        if not pending:
            return
        for fingerprint in fingerprinter.fingerprint(pending):
            vector = np.asarray(fingerprint.vector, dtype=np.float32)
            if is_registered(vector):
                registered += 1
            else:
                rows.append(vector)
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
    if len(rows) < MIN_IMAGES:
        raise InputError(
            f"a background bank needs at least {MIN_IMAGES} usable generic images; got "
            f"{len(rows)} ({len(unreadable)} unreadable, {registered} matching registered works)"
        )
    vectors = np.stack(rows).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "spec_id": fingerprinter.spec_id,
        "count": int(vectors.shape[0]),
        "dim": int(vectors.shape[1]),
        "sha256": _digest(vectors),
        "source": source,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    scratch_vectors = folder / f".{VECTORS}.tmp"
    with scratch_vectors.open("wb") as handle:
        np.save(handle, vectors, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())
    scratch_manifest = folder / f".{MANIFEST}.tmp"
    scratch_manifest.write_text(json.dumps(manifest, indent=2), "utf-8")
    # The manifest names the vectors' digest, so a crash between the two renames leaves
    # a bank that `load` refuses as damaged, never one that silently mismatches.
    os.replace(scratch_vectors, folder / VECTORS)
    os.replace(scratch_manifest, folder / MANIFEST)
    return BuildReport(int(vectors.shape[0]), unreadable, registered, folder)
