"""Property tests: the exact faiss structures equal ``NumpyIndex`` on arbitrary histories.

Vectors are small integers, so every inner product is exact in float32 whatever the
summation order; that makes exact equality (scores, ids, and which tied id wins) a fair
demand, and the many ties it produces exercise the tie-breaking and the inclusive radius.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from screener.index import IndexSpec, NumpyIndex, VectorIndex, create

DENSE = IndexSpec("prop-dense", 4, "ip")
BINARY = IndexSpec("prop-binary", 32, "hamming")
SETTINGS = settings(max_examples=40, deadline=None)


@dataclass
class History:
    ids: list[int]
    vectors: npt.NDArray[Any]
    removed: list[int]
    readded: list[int]
    fresh: npt.NDArray[Any]
    queries: npt.NDArray[Any]
    k: int | None
    radius: float | None


def _rows(spec: IndexSpec, n: int) -> st.SearchStrategy[npt.NDArray[Any]]:
    if spec.metric == "ip":
        small = arrays(np.int8, (n, spec.dim), elements=st.integers(-2, 2))
        return small.map(lambda a: a.astype(np.float32))
    return arrays(np.uint8, (n, spec.dim // 8), elements=st.integers(0, 255))


@st.composite
def histories(draw: st.DrawFn, spec: IndexSpec) -> History:
    ids = draw(st.lists(st.integers(0, 500), max_size=30, unique=True))
    removed = draw(st.lists(st.sampled_from(ids), unique=True)) if ids else []
    readded = draw(st.lists(st.sampled_from(ids), unique=True)) if ids else []
    n_queries = draw(st.integers(1, 3))
    k = draw(st.none() | st.integers(1, 8))
    if spec.metric == "ip":
        radius_choice = st.integers(-8, 8).map(float)
    else:
        radius_choice = st.integers(0, spec.dim).map(float)
    radius = draw(radius_choice if k is None else st.none() | radius_choice)
    return History(
        ids=ids,
        vectors=draw(_rows(spec, len(ids))),
        removed=removed,
        readded=readded,
        fresh=draw(_rows(spec, len(readded))),
        queries=draw(_rows(spec, n_queries)),
        k=k,
        radius=radius,
    )


def replay(index: VectorIndex, h: History) -> None:
    index.add(np.array(h.ids, dtype=np.int64), h.vectors)
    index.remove(np.array(h.removed, dtype=np.int64))
    index.add(np.array(h.readded, dtype=np.int64), h.fresh)


def assert_same_as_reference(index: VectorIndex, h: History) -> None:
    ref = NumpyIndex(index.spec)
    replay(ref, h)
    replay(index, h)
    assert len(index) == len(ref)
    np.testing.assert_array_equal(index.ids(), ref.ids())
    got = index.search(h.queries, k=h.k, radius=h.radius)
    want = ref.search(h.queries, k=h.k, radius=h.radius)
    for g, w in zip([*got.ids, *got.scores], [*want.ids, *want.scores], strict=True):
        np.testing.assert_array_equal(g, w)


@SETTINGS
@given(histories(DENSE))
def test_flat_equals_reference(h: History) -> None:
    assert_same_as_reference(create(DENSE, "Flat"), h)


@SETTINGS
@given(histories(DENSE))
def test_ivf_buffer_equals_reference(h: History) -> None:
    """Before training, IVF serves from its exact buffer."""
    assert_same_as_reference(create(DENSE, "IVF4,Flat", train_min=1000), h)


@SETTINGS
@given(histories(BINARY))
def test_bflat_equals_reference(h: History) -> None:
    assert_same_as_reference(create(BINARY, "BFlat"), h)


@SETTINGS
@given(histories(BINARY), st.integers(0, 3), st.integers(0, 2))
def test_bmih_equals_reference(h: History, max_flips: int, k_flips: int) -> None:
    """Multi-hash probes, scan fall-backs and tombstones, all exact."""
    index = create(BINARY, "BMIH4", max_flips=max_flips, k_flips=k_flips, compact_min=4)
    assert_same_as_reference(index, h)
