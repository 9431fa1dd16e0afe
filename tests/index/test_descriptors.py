"""The descriptor-level index: nearest stored descriptors with their owners, removal by
owner, clear refusals, and the bytes a stored descriptor costs."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
import pytest

from screener.index.descriptors import Codebook, DescriptorIndex, Layout, train

#: Small enough to train in a moment; every list searched, so that answers are exact
#: over the quantised codes.
LAYOUT = Layout(lists=16, code_bytes=32, probes=16)


def codes(seed: int, n: int) -> npt.NDArray[np.uint8]:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 128), dtype=np.uint8)


@functools.cache
def book() -> Codebook:
    return train(codes(1000, 4096), LAYOUT)


def new_index() -> DescriptorIndex:
    return DescriptorIndex(book)


def noisy(x: npt.NDArray[np.uint8], seed: int, spread: int = 4) -> npt.NDArray[np.uint8]:
    noise = np.random.default_rng(seed).integers(-spread, spread + 1, size=x.shape)
    out: npt.NDArray[np.uint8] = np.clip(x.astype(np.int64) + noise, 0, 255).astype(np.uint8)
    return out


def test_near_copies_find_their_owner() -> None:
    index = new_index()
    for owner in range(10):
        index.add(owner, codes(owner, 50))
    assert len(index) == 500
    found = index.search(noisy(codes(3, 50), seed=99), k=2)
    assert found.labels.shape == (50, 2)
    assert (found.labels[:, 0] == 3).mean() > 0.9
    assert np.all(found.distances[:, 0] <= found.distances[:, 1])


def test_removed_owners_are_never_returned_and_the_rest_survive() -> None:
    index = new_index()
    for owner in range(6):
        index.add(owner, codes(owner, 40))
    assert index.remove([1, 2]) == 2
    assert index.remove([1, 99]) == 0  # already gone, never there
    assert len(index) == 160
    found = index.search(codes(1, 40), k=3)
    assert not np.isin(found.labels, [1, 2]).any()
    assert (found.labels >= 0).all()  # enough live rows remain for every query
    index.remove([0, 3, 4])
    assert len(index) == 40 and index.owners == frozenset({5})
    found = index.search(codes(5, 40), k=1)
    assert (found.labels[:, 0] == 5).mean() > 0.9
    index.add(1, codes(1, 40))  # an owner may come back after removal
    assert (index.search(codes(1, 40), k=1).labels[:, 0] == 1).mean() > 0.9


def test_empty_index_and_empty_owner() -> None:
    index = new_index()
    found = index.search(codes(0, 3), k=2)
    assert (found.labels == -1).all() and np.isinf(found.distances).all()
    index.add(7, np.zeros((0, 128), dtype=np.uint8))  # a textureless image: no descriptors
    assert index.owners == frozenset({7}) and len(index) == 0
    assert index.remove([7]) == 1


def test_bad_input_is_refused() -> None:
    index = new_index()
    with pytest.raises(ValueError, match="128"):
        index.add(1, np.zeros((4, 64), dtype=np.uint8))
    index.add(1, codes(1, 4))
    with pytest.raises(ValueError, match="already"):
        index.add(1, codes(2, 4))
    with pytest.raises(ValueError, match="already"):  # twice in one batch
        index.add_many([(2, codes(2, 4)), (2, codes(3, 4))])
    with pytest.raises(ValueError, match="128"):  # one bad item: nothing of the batch stored
        index.add_many([(3, codes(3, 4)), (4, np.zeros((2, 5), dtype=np.uint8))])
    assert index.owners == frozenset({1}) and len(index) == 4


def test_a_batch_is_searchable_like_single_additions() -> None:
    index = new_index()
    index.add_many([(owner, codes(owner, 30)) for owner in range(8)])
    assert len(index) == 240 and index.owners == frozenset(range(8))
    found = index.search(noisy(codes(6, 30), seed=5), k=1)
    assert (found.labels[:, 0] == 6).mean() > 0.9


def test_a_stored_descriptor_costs_its_code_and_its_owner_id() -> None:
    index = new_index()
    index.add_many([(owner, codes(owner, 100)) for owner in range(30)])
    size = index.structure_bytes()
    assert size["rows"] == len(index) == 3000
    assert size["row_bytes"] == 3000 * (LAYOUT.code_bytes + 8)  # 40 bytes, was 128 + links
    index.remove(range(10))
    assert index.structure_bytes()["row_bytes"] == 2000 * (LAYOUT.code_bytes + 8)
    # Fixed: the coarse centroids and the PQ codebooks.
    assert size["fixed_bytes"] == 4 * (16 * 128 + 32 * 256 * 4)  # no precomputed tables


def test_labels_follow_their_owners() -> None:
    index = new_index()
    index.add(1, codes(1, 5), label="w1")
    index.add_many([(2, codes(2, 5)), (3, codes(3, 5))], {2: "w2"})
    assert index.labels == {1: "w1", 2: "w2", 3: ""}
    index.remove([2])
    assert index.labels == {1: "w1", 3: ""}
