"""From index hits to candidate works, and exact per-signal values for each candidate.

The indexes only propose works. Each candidate is then compared exactly against every
stored fingerprint of its references, so the evidence names every signal's true best value
and where it was found, even for a signal whose index did not rank that work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from screener.core.fusion import cohort_name, generic_name
from screener.core.regions import is_window
from screener.core.verdict import RegionPair
from screener.matching.signals import RegionFingerprint, is_whole, stored_matrix
from screener.models import descriptor
from screener.models.sscd import WINDOW_EVIDENCE
from screener.store.catalog import StoredFingerprint


def hamming(queries: npt.NDArray[np.uint8], refs: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """Pairwise Hamming distances between packed bit rows: (Q, B) x (R, B) -> (Q, R).
    Rows are compared 64 bits at a time where their width allows."""
    word = np.uint64 if queries.shape[1] % 8 == 0 else np.uint8
    ours: npt.NDArray[np.unsignedinteger[Any]] = np.ascontiguousarray(queries).view(word)
    theirs: npt.NDArray[np.unsignedinteger[Any]] = np.ascontiguousarray(refs).view(word)
    xor = np.bitwise_xor(ours[:, None, :], theirs[None, :, :])
    distances: npt.NDArray[np.int64] = np.bitwise_count(xor).sum(axis=2, dtype=np.int64)
    return distances


@dataclass
class Best:
    """The best value of one signal for one work, and where it came from."""

    value: float
    pair: RegionPair


@dataclass
class Candidate:
    work_id: str
    best: dict[str, Best] = field(default_factory=dict)
    # The work's generic level per evidence name (see `background.Bank.levels`).
    generic: dict[str, float] = field(default_factory=dict)
    # ... and its cohort level: what the k-th closest other registered work reaches.
    cohort: dict[str, float] = field(default_factory=dict)

    def values(self) -> dict[str, float | None]:
        """The best values, and the levels under `fusion.generic_name` and
        `fusion.cohort_name`."""
        values: dict[str, float | None] = {name: b.value for name, b in self.best.items()}
        values.update({generic_name(name): level for name, level in self.generic.items()})
        values.update({cohort_name(name): level for name, level in self.cohort.items()})
        return values


def lower_is_closer(signal: str) -> bool:
    """Whether a smaller value of ``signal`` is closer (its descriptor's metric says)."""
    return descriptor(signal).lower_is_closer


def evidence_name(signal: str, query_region: str, reference_region: str) -> str | None:
    """The evidence a pair of parts gives, or None for region against region. A window of
    the query's feature map gives its own evidence, against whole references only."""
    query_whole, ref_whole = is_whole(query_region), is_whole(reference_region)
    if is_window(query_region):
        return WINDOW_EVIDENCE if ref_whole and signal == "sscd" else None
    if query_whole and ref_whole:
        return descriptor(signal).evidence
    if query_whole or ref_whole:
        return descriptor(signal).region_evidence
    return None


def query_matrix(
    signal: str, fingerprints: Sequence[RegionFingerprint], binary: bool
) -> tuple[list[str], npt.NDArray[Any]]:
    regions = [f.region for f in fingerprints]
    rows = [f.fingerprint.vector for f in fingerprints]
    dtype = np.uint8 if binary else np.float32
    return regions, np.stack(rows).astype(dtype)


def score_exact(
    signal: str,
    binary: bool,
    query: Sequence[RegionFingerprint],
    stored: Iterable[StoredFingerprint],
    min_quality: float | None,
) -> dict[str, dict[str, Best]]:
    """Each work's best value of one signal, by evidence name.

    Whole against whole gives the signal's main evidence; a region of the query against a
    whole reference, or the whole query against a region of a reference, gives its region
    evidence. Region against region is not compared: it explains no copy that the other
    two miss, and it pairs unrelated backgrounds.
    """
    refs = [s for s in stored if min_quality is None or (s.quality or 0.0) >= min_quality]
    if not refs or not query:
        return {}
    regions, q = query_matrix(signal, query, binary)
    if binary:
        r = stored_matrix([s.vector for s in refs], binary)
        values = hamming(q.astype(np.uint8), r).astype(np.float64)
        sign = -1.0
    else:
        r32 = stored_matrix([s.vector for s in refs], binary)
        values = (q.astype(np.float32) @ r32.T).astype(np.float64)
        sign = 1.0
    best: dict[str, dict[str, Best]] = {}
    for column, ref in enumerate(refs):
        pair_names = [evidence_name(signal, region, ref.region) for region in regions]
        for name in {n for n in pair_names if n is not None}:
            rows = np.array([n == name for n in pair_names])
            scores = np.where(rows, sign * values[:, column], -np.inf)
            row = int(np.argmax(scores))
            value = float(values[row, column])
            current = best.setdefault(name, {}).get(ref.work_id)
            if current is None or sign * value > sign * current.value:
                best[name][ref.work_id] = Best(
                    value, RegionPair(regions[row], ref.reference_id, ref.region)
                )
    return best


def merge(per_evidence: Mapping[str, Mapping[str, Best]]) -> dict[str, Candidate]:
    """Bests keyed by evidence name then work, regrouped as one candidate per work."""
    candidates: dict[str, Candidate] = {}
    for name, by_work in per_evidence.items():
        for work_id, best in by_work.items():
            candidates.setdefault(work_id, Candidate(work_id)).best[name] = best
    return candidates
