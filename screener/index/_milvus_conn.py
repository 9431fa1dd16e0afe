"""Milvus connection, server settings, structure and consistency constants, and errors."""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any, Final

from screener.index.base import IndexError_

#: Milvus's largest top-k (``quotaAndLimits.limits.maxTopK``); also the cap of a radius search.
MAX_TOPK: Final = 16_384
#: Queries per search call and ids per expression, to keep messages small.
_QUERY_BATCH: Final = 1024
_ID_BATCH: Final = 4096
#: Bytes of vectors per upsert call (Milvus refuses messages over 64 MB by default).
_UPSERT_BYTES: Final = 16 * 1024 * 1024
#: Relative slack when re-running a tied k-NN query as a range search (as for faiss).
_TIE_SLACK: Final = 1e-5

#: Seconds to wait for a server to answer when connecting (gRPC retries until then).
CONNECT_TIMEOUT_S = 10.0

#: Seconds :meth:`MilvusIndex.flush` waits for the query node to serve sealed segments.
SERVE_TIMEOUT_S = 120.0
_SEALED: Final = 3  # commonpb.SegmentState.Sealed

CONSISTENCY_LEVELS: Final = ("Strong", "Session", "Bounded", "Eventually")
DENSE_STRUCTURES: Final = ("FLAT", "HNSW", "IVF_FLAT")
BINARY_STRUCTURES: Final = ("BIN_FLAT", "BIN_IVF_FLAT")
EXACT: Final = frozenset({"FLAT", "BIN_FLAT"})
_PARAMS: Final = {
    "FLAT": frozenset(),
    "BIN_FLAT": frozenset(),
    "HNSW": frozenset({"M", "ef_construction", "ef_search"}),
    "IVF_FLAT": frozenset({"nlist", "nprobe"}),
    "BIN_IVF_FLAT": frozenset({"nlist", "nprobe"}),
}
_DEFAULTS: Final = {"M": 32, "ef_construction": 200, "ef_search": 128, "nlist": 1024, "nprobe": 16}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_MARK = "high_water"
_ID, _VECTOR = "id", "vector"

_connect_lock = threading.Lock()
_aliases: dict[tuple[str, str, str], str] = {}


class MilvusUnavailable(IndexError_):
    """Milvus cannot be reached, or refused a request (the message says which and why)."""


def choose_milvus_structure(metric: str, expected_size: int, *, approx_above: int = 50_000) -> str:
    """``auto`` resolved: exact up to ``approx_above`` rows, then HNSW for dense vectors.

    Binary codes stay ``BIN_FLAT`` at every size, as :func:`index.choose_structure` keeps
    faiss's flat binary scan (the lookup benchmark found no faster exact structure).
    """
    if metric not in ("ip", "hamming"):
        raise ValueError(f"metric must be 'ip' or 'hamming', got {metric!r}")
    if metric == "hamming":
        return "BIN_FLAT"
    return "FLAT" if expected_size <= approx_above else "HNSW"


def _pymilvus() -> Any:
    try:
        import pymilvus
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise MilvusUnavailable(
            "the milvus backend needs pymilvus: pip install -e '.[milvus]'"
        ) from exc
    return pymilvus


def connect(uri: str, token: str | None = None, db_name: str = "default") -> str:
    """The pymilvus connection alias for ``uri`` (one per process and server), made once."""
    key = (uri, token or "", db_name)
    with _connect_lock:
        alias = _aliases.get(key)
        if alias is not None:
            return alias
        alias = f"screener-{len(_aliases)}-{uuid.uuid4().hex[:8]}"
        pm = _pymilvus()
        try:
            pm.connections.connect(
                alias, uri=uri, token=token or "", db_name=db_name, timeout=CONNECT_TIMEOUT_S
            )
        except Exception as exc:
            raise MilvusUnavailable(f"cannot connect to Milvus at {uri}: {exc}") from exc
        _aliases[key] = alias
        return alias


def _call(what: str, action: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a pymilvus call; its failures become ``MilvusUnavailable`` naming ``what``."""
    pm = _pymilvus()
    try:
        return action(*args, **kwargs)
    except pm.exceptions.MilvusException as exc:
        raise MilvusUnavailable(f"Milvus {what} failed: {exc}") from exc
