"""What is particular to ``FaissBinaryIndex``: the multi-hash exactness rule and its paths."""

from __future__ import annotations

import numpy as np
import pytest

from screener.index import FaissBinaryIndex, IndexSpec, NumpyIndex
from screener.index.faiss_binary import exact_flips
from tests.contract.synth import flip_bits, near_duplicate_codes

PDQ = IndexSpec("pdq", 256, "hamming")


@pytest.mark.parametrize(
    ("radius", "nhash", "flips"),
    [(31, 16, 1), (15, 16, 0), (16, 16, 1), (31, 8, 3), (31, 32, 0), (47, 16, 2), (0, 16, 0)],
)
def test_exact_flips_rule(radius: int, nhash: int, flips: int) -> None:
    assert exact_flips(radius, nhash) == flips
    # the rule: every code within radius is found iff radius < nhash * (flips + 1)
    assert radius < nhash * (flips + 1)
    assert flips == 0 or radius >= nhash * flips


def test_pigeonhole_worst_case_is_found() -> None:
    """31 flipped bits spread as evenly as possible (one or two per substring) still match."""
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (1, 32), dtype=np.uint8)
    bits = np.unpackbits(base, axis=1)
    spread = [16 * s + s for s in range(16)] + [16 * s + (s + 8) % 16 for s in range(15)]
    assert len(set(spread)) == 31
    bits[0, spread] ^= 1
    far = np.packbits(bits, axis=1)
    index = FaissBinaryIndex(PDQ, "BMIH16", max_flips=1)
    index.add(np.array([42]), far)
    assert index.search(base, radius=31).ids[0].tolist() == [42]
    assert index.search(base, radius=30).ids[0].size == 0


def _fill(index: FaissBinaryIndex | NumpyIndex, codes: np.ndarray) -> None:
    index.add(np.arange(len(codes)) * 3, codes)


def test_all_search_paths_equal_the_reference() -> None:
    rng = np.random.default_rng(9)
    codes, base = near_duplicate_codes(rng, 150, 4, 256, max_flips=40)
    queries = flip_bits(rng, base[:40], 40)
    ref = NumpyIndex(PDQ)
    _fill(ref, codes)
    for max_flips, k_flips in ((2, 1), (0, 0), (4, 2)):
        index = FaissBinaryIndex(PDQ, "BMIH16", max_flips=max_flips, k_flips=k_flips)
        _fill(index, codes)
        for kwargs in (
            {"k": 1},
            {"k": 7},  # few codes that close: falls back to a scan
            {"radius": 31},  # probe with one flip (or a scan when max_flips=0)
            {"radius": 60},  # four flips needed: scan unless max_flips=4
            {"k": 3, "radius": 31},
        ):
            got, want = index.search(queries, **kwargs), ref.search(queries, **kwargs)
            for g, w in zip([*got.ids, *got.scores], [*want.ids, *want.scores], strict=True):
                np.testing.assert_array_equal(g, w)


def test_tombstones_and_compaction() -> None:
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, (60, 32), dtype=np.uint8)
    index = FaissBinaryIndex(PDQ, "BMIH16", compact_min=10)
    index.add(np.arange(60), codes)
    assert index.remove(np.arange(20)) == 20
    assert index.tombstones == 20
    assert all(ids.size == 0 for ids in index.search(codes[:20], radius=0).ids)
    assert [ids.tolist() for ids in index.search(codes[20:25], k=1).ids] == [
        [i] for i in range(20, 25)
    ]
    index.remove(np.arange(20, 45))  # 45 dead > 15 live: rebuilt
    assert index.tombstones == 0
    assert len(index) == 15
    assert [ids.tolist() for ids in index.search(codes[45:], k=1).ids] == [
        [i] for i in range(45, 60)
    ]


def test_params_are_reported() -> None:
    assert FaissBinaryIndex(PDQ, "BMIH16").params == {
        "compact_min": 1024,
        "k_flips": 1,
        "max_flips": 2,
    }
    assert FaissBinaryIndex(PDQ).params == {}
    assert FaissBinaryIndex(PDQ).kind == "faiss:BFlat"
