"""Crash-safe save and checked load of an index file and its JSON manifest.

Layout: ``<path>`` holds the index state as one uncompressed ``.npz`` container (the faiss
serialisation as a uint8 array, plus any label or tombstone arrays faiss itself does not
keep), and ``<path>.json`` the manifest. Each file is written to a temporary file in the
same directory, fsynced and renamed over the old one. The index goes first and the manifest
last: the manifest is the commit point, and because it carries the sha256 of the index
bytes, a crash between the two renames (new index, old manifest) is caught as
``IndexCorrupt`` on load rather than silently serving the wrong state.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from screener.index.base import IndexCorrupt, IndexSpec, Manifest, VectorIndex

FORMAT_VERSION = 1

Arrays = dict[str, npt.NDArray[Any]]


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; not every platform can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new bytes, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def pack(arrays: Arrays) -> bytes:
    buf = io.BytesIO()
    savez: Any = np.savez  # numpy's stub reads **arrays as its allow_pickle flag
    savez(buf, **arrays)
    return buf.getvalue()


def unpack(data: bytes, path: Path) -> Arrays:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {name: z[name] for name in z.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise IndexCorrupt(f"index file {path} cannot be decoded: {e}") from e


def write_index(
    path: Path,
    *,
    spec: IndexSpec,
    kind: str,
    count: int,
    high_water: int,
    arrays: Arrays,
    extra: dict[str, Any],
) -> Manifest:
    """Write index then manifest (the commit point); return the manifest written."""
    if isinstance(high_water, bool) or not isinstance(high_water, int | np.integer):
        raise ValueError(f"high_water must be an int, got {high_water!r}")
    path = Path(path)
    data = pack(arrays)
    manifest = Manifest(
        spec=spec,
        kind=kind,
        count=int(count),
        high_water=int(high_water),
        checksum=hashlib.sha256(data).hexdigest(),
        extra=extra,
    )
    write_atomic(path, data)
    write_atomic(manifest_path(path), json.dumps(_to_json(manifest), indent=2).encode())
    return manifest


def save_index(
    index: VectorIndex, path: Path, high_water: int, *, arrays: Arrays, extra: dict[str, Any]
) -> Manifest:
    """:func:`write_index` for ``index``: its spec, kind and count go in the manifest."""
    return write_index(
        path,
        spec=index.spec,
        kind=index.kind,
        count=len(index),
        high_water=high_water,
        arrays=arrays,
        extra=extra,
    )


def _to_json(m: Manifest) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "spec_id": m.spec.spec_id,
        "dim": m.spec.dim,
        "metric": m.spec.metric,
        "kind": m.kind,
        "count": m.count,
        "high_water": m.high_water,
        "checksum": m.checksum,
        "extra": m.extra,
    }


_FIELDS: dict[str, type] = {
    "format_version": int,
    "spec_id": str,
    "dim": int,
    "metric": str,
    "kind": str,
    "count": int,
    "high_water": int,
    "checksum": str,
    "extra": dict,
}


def _read_json(mpath: Path) -> Any:
    """A manifest's JSON; ``IndexCorrupt`` if it is missing or unreadable."""
    try:
        return json.loads(mpath.read_bytes())
    except FileNotFoundError as e:
        raise IndexCorrupt(f"manifest {mpath} is missing") from e
    except (OSError, ValueError) as e:
        raise IndexCorrupt(f"manifest {mpath} is unreadable: {e}") from e


def read_manifest(path: Path) -> Manifest:
    """The manifest saved beside ``path``; ``IndexCorrupt`` if missing or malformed."""
    mpath = manifest_path(Path(path))
    doc = _read_json(mpath)
    if not isinstance(doc, dict):
        raise IndexCorrupt(f"manifest {mpath} is not a JSON object")
    for name, typ in _FIELDS.items():
        value = doc.get(name)
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise IndexCorrupt(f"manifest {mpath}: field {name!r} missing or not {typ.__name__}")
    if doc["format_version"] != FORMAT_VERSION:
        raise IndexCorrupt(
            f"manifest {mpath} has format_version {doc['format_version']}, "
            f"this code reads {FORMAT_VERSION}"
        )
    if doc["metric"] not in ("ip", "hamming"):
        raise IndexCorrupt(f"manifest {mpath}: unknown metric {doc['metric']!r}")
    return Manifest(
        spec=IndexSpec(spec_id=doc["spec_id"], dim=doc["dim"], metric=doc["metric"]),
        kind=doc["kind"],
        count=doc["count"],
        high_water=doc["high_water"],
        checksum=doc["checksum"],
        extra=doc["extra"],
    )


def read_index_arrays(path: Path, manifest: Manifest) -> Arrays:
    """The arrays of the index file, after checking its bytes against the manifest's sha256."""
    return read_checked(path, manifest.checksum)


def read_checked(path: Path, checksum: str) -> Arrays:
    """The arrays of the file at ``path``, after checking its bytes against ``checksum``
    (a sha256); ``IndexCorrupt`` if it is missing, unreadable, fails it or cannot be decoded."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise IndexCorrupt(f"index file {path} is missing") from e
    except OSError as e:
        raise IndexCorrupt(f"index file {path} is unreadable: {e}") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != checksum:
        raise IndexCorrupt(
            f"index file {path} fails its checksum (sha256 {digest}, manifest says "
            f"{checksum}): truncated, edited, or a save was interrupted"
        )
    return unpack(data, path)


def write_document(path: Path, doc: dict[str, Any], arrays: Arrays) -> dict[str, Any]:
    """Save ``arrays`` at ``path`` and ``doc`` as its manifest, with the sha256 of the
    saved bytes added as ``checksum``, in the order :func:`write_index` uses (the manifest
    last: the commit point). For an index with a manifest of its own (not a
    :class:`VectorIndex`); returns the manifest written."""
    if "checksum" in doc:
        raise ValueError("the manifest's checksum is computed here, not given")
    path = Path(path)
    data = pack(arrays)
    written = {**doc, "checksum": hashlib.sha256(data).hexdigest()}
    write_atomic(path, data)
    write_atomic(manifest_path(path), json.dumps(written, indent=2).encode())
    return written


def read_document(path: Path) -> tuple[dict[str, Any], Arrays]:
    """The manifest and the checked arrays saved by :func:`write_document`;
    ``IndexCorrupt`` if either file is missing, malformed or fails the checksum."""
    path = Path(path)
    mpath = manifest_path(path)
    doc = _read_json(mpath)
    if not isinstance(doc, dict) or not isinstance(doc.get("checksum"), str):
        raise IndexCorrupt(f"manifest {mpath} is not a JSON object with a checksum")
    return doc, read_checked(path, doc["checksum"])
