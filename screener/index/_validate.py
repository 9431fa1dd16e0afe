"""Input checks shared by every index.

Faiss answers bad input with a crash or, worse, with silent garbage (a float64 matrix read
as float32, -1 taken for "no result"). Every public method therefore funnels its arguments
through these functions first, so that a caller gets one clear ``ValueError``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from screener.index.base import IdArray, IndexSpec

METRICS = ("ip", "hamming")


def check_spec(spec: IndexSpec) -> None:
    """Refuse a spec no index could hold."""
    if spec.metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {spec.metric!r}")
    if isinstance(spec.dim, bool) or not isinstance(spec.dim, int) or spec.dim < 1:
        raise ValueError(f"dim must be a positive int, got {spec.dim!r}")
    if spec.metric == "hamming" and spec.dim % 8:
        raise ValueError(f"hamming dim counts bits and must be a multiple of 8, got {spec.dim}")


def row_width(spec: IndexSpec) -> int:
    """Columns of one stored row: floats for ``ip``, packed bytes for ``hamming``."""
    return spec.dim if spec.metric == "ip" else spec.dim // 8


def as_ids(ids: Any) -> IdArray:
    """A 1-D int64 copy of ``ids``; ids must be non-negative because faiss uses -1 for none."""
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"ids must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"ids must be integers convertible to int64, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError("ids do not fit in int64")
    out = arr.astype(np.int64)
    if int(out.min()) < 0:
        raise ValueError("ids must be non-negative (faiss reserves -1 for 'no result')")
    return out


def as_vectors(vectors: Any, spec: IndexSpec, what: str = "vectors") -> npt.NDArray[Any]:
    """A C-contiguous 2-D matrix in the metric's dtype: float32 for ip, uint8 for hamming."""
    arr = np.asarray(vectors)
    width = row_width(spec)
    if arr.ndim != 2 or arr.shape[1] != width:
        unit = "floats" if spec.metric == "ip" else f"bytes ({spec.dim} bits)"
        raise ValueError(
            f"{what} must have shape (n, {width}) i.e. {width} {unit} per row "
            f"for spec {spec.spec_id!r}, got shape {arr.shape}"
        )
    if spec.metric == "hamming":
        if arr.dtype != np.uint8:
            raise ValueError(f"{what} must be uint8 rows of packed bits, got dtype {arr.dtype}")
        return np.ascontiguousarray(arr)
    if arr.dtype.kind != "f":
        raise ValueError(f"{what} must be floating point, got dtype {arr.dtype}")
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise ValueError(f"{what} contain NaN or infinity (or values too large for float32)")
    return out


def check_add(ids: Any, vectors: Any, spec: IndexSpec) -> tuple[IdArray, npt.NDArray[Any]]:
    """Validated (ids, vectors) for ``add``: equal lengths and no id twice in one batch."""
    id_arr = as_ids(ids)
    vec = as_vectors(vectors, spec)
    if len(id_arr) != len(vec):
        raise ValueError(f"got {len(id_arr)} ids for {len(vec)} vectors")
    if len(np.unique(id_arr)) != len(id_arr):
        raise ValueError("ids repeat within one add call; each id may appear once")
    return id_arr, vec


def check_query(k: Any, radius: Any) -> tuple[int | None, float | None]:
    """Validated ``k`` and ``radius``; at least one must be given."""
    if k is None and radius is None:
        raise ValueError("search needs k, radius or both")
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise ValueError(f"k must be an int, got {k!r}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
    if radius is not None:
        if isinstance(radius, bool) or not isinstance(
            radius, int | float | np.integer | np.floating
        ):
            raise ValueError(f"radius must be a number, got {radius!r}")
        if not math.isfinite(float(radius)):
            raise ValueError(f"radius must be finite, got {radius!r}")
    return (None if k is None else int(k)), (None if radius is None else float(radius))


def positive_int(name: str, value: Any) -> int:
    """A tuning parameter that must be an int >= 1 (efSearch, nprobe, ...)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def non_negative_int(name: str, value: Any) -> int:
    """A tuning parameter that must be an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return int(value)
