"""Generic levels: each bank image scored against a work exactly as a check scores a
query (`score_exact`), and the k-th closest taken. Pure numpy, checked against that."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from screener.matching.background import Bank, Rows
from screener.matching.candidates import score_exact
from screener.matching.signals import RegionFingerprint
from screener.models import Fingerprint
from screener.store.catalog import StoredFingerprint

QUERY_REGIONS = ("whole", "whole/d1", "whole/d2", "tl", "br", "centre")
REF_REGIONS = ("whole", "whole/bg-black", "tl", "centre")


def _vectors(rng: np.random.Generator, n: int, binary: bool) -> npt.NDArray[Any]:
    if binary:
        bits: npt.NDArray[Any] = rng.integers(0, 256, size=(n, 8), dtype=np.uint8)
        return bits
    v = rng.normal(size=(n, 16))
    unit: npt.NDArray[Any] = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return unit


def _case(
    seed: int, binary: bool
) -> tuple[Bank, list[StoredFingerprint], list[list[tuple[int, str]]]]:
    rng = np.random.default_rng(seed)
    images = int(rng.integers(3, 9))
    image, regions = [], []
    for position in range(images):
        # Every image has its whole; some regions are missing (low quality, as in checks).
        names = ["whole", *(r for r in QUERY_REGIONS[1:] if rng.random() < 0.7)]
        image += [position] * len(names)
        regions += names
    matrix = _vectors(rng, len(image), binary)
    quality = rng.uniform(0.0, 1.0, len(image)).astype(np.float32)
    rows = Rows(
        matrix,
        np.array(image, dtype=np.int64),
        np.array([r.startswith("whole") for r in regions]),
        quality,
    )
    refs: list[StoredFingerprint] = []
    for work in range(int(rng.integers(1, 4))):
        for reference, region in enumerate(REF_REGIONS):
            if region != "whole" and rng.random() < 0.4:
                continue
            refs.append(
                StoredFingerprint(
                    id=len(refs),
                    work_id=f"w{work}",
                    reference_id=reference,
                    signal="pdq" if binary else "sscd",
                    spec_id="s",
                    region=region,
                    vector=_vectors(rng, 1, binary)[0].tobytes(),
                    quality=float(rng.uniform(0.0, 1.0)),
                )
            )
    bank = Bank(np.zeros((images, 4), np.float32), "s", "d", "test", "now", {refs[0].signal: rows})
    per_image = [
        [(i, regions[i]) for i, owner in enumerate(image) if owner == p] for p in range(images)
    ]
    return bank, refs, per_image


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 10_000),
    st.booleans(),
    st.integers(1, 10),
    st.sampled_from([None, 0.5]),
)
def test_levels_are_the_kth_closest_bank_image_scored_as_a_query(
    seed: int, binary: bool, k: int, floor: float | None
) -> None:
    bank, refs, per_image = _case(seed, binary)
    signal = refs[0].signal
    rows = bank.rows[signal]
    levels = bank.levels(signal, refs, k, floor)

    # The same, one bank image at a time, through the check's own exact scoring.
    seen: dict[str, dict[str, list[float]]] = {}
    for members in per_image:
        query = [
            RegionFingerprint(signal, region, Fingerprint(rows.matrix[i], float(rows.quality[i])))
            for i, region in members
            if floor is None or rows.quality[i] >= floor
        ]
        for name, by_work in score_exact(signal, binary, query, refs, floor).items():
            for work_id, best in by_work.items():
                seen.setdefault(name, {}).setdefault(work_id, []).append(best.value)
    expected = {
        name: {
            work_id: sorted(values, reverse=not binary)[min(k, len(values)) - 1]
            for work_id, values in by_work.items()
        }
        for name, by_work in seen.items()
    }
    # Both sides are float32 products of the same unit vectors, summed in another order
    # (one matrix product against the bank, one per image): equal to float32 rounding.
    assert _flat(levels) == pytest.approx(_flat(expected), rel=1e-5, abs=1e-6)
    if floor is None:  # every case has whole rows and whole references
        assert levels


def _flat(nested: dict[str, dict[str, float]]) -> dict[str, float]:
    return {f"{name}/{work}": v for name, by_work in nested.items() for work, v in by_work.items()}


def test_no_rows_or_no_references_give_no_levels() -> None:
    bank, refs, _ = _case(1, binary=True)
    assert bank.levels("sscd", refs, 3) == {}
    assert bank.levels("pdq", [], 3) == {}
    assert bank.levels("pdq", refs, 3, min_quality=2.0) == {}
