"""Saving and loading the descriptor-level index: the same answers after a round trip,
tombstones kept, and every damaged or mismatched file refused with the reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from screener.index import IndexCorrupt
from screener.index import descriptors as stored
from screener.index._persist import manifest_path
from screener.index.descriptors import DescriptorIndex
from tests.index.test_descriptors import codes
from tests.index.test_descriptors import noisy as near


def noisy(x: npt.NDArray[np.uint8], seed: int) -> npt.NDArray[np.uint8]:
    return near(x, seed, spread=6)


def built() -> DescriptorIndex:
    index = DescriptorIndex()
    index.add_many([(owner, codes(owner, 60)) for owner in range(12)])
    index.add(40, np.zeros((0, 128), dtype=np.uint8))  # an owner without descriptors
    index.add_many([(owner, codes(owner, 30)) for owner in range(20, 24)])
    return index


QUERIES = np.concatenate([noisy(codes(o, 60), seed=o + 100) for o in (2, 5, 21)] + [codes(99, 40)])


def same_answers(a: DescriptorIndex, b: DescriptorIndex) -> None:
    for k in (1, 4, 9):
        x, y = a.search(QUERIES, k), b.search(QUERIES, k)
        np.testing.assert_array_equal(x.labels, y.labels)
        np.testing.assert_array_equal(x.distances, y.distances)


def test_round_trip_gives_identical_answers_and_keeps_own_arrays(tmp_path: Path) -> None:
    index = built()
    path = tmp_path / "d.index"
    rows = np.arange(5, dtype=np.int64)
    doc = stored.save(path, index, {"spec_id": "sift-x"}, {"mine": rows})
    assert doc["count"] == len(index) == 12 * 60 + 4 * 30
    loaded, manifest, arrays = stored.load(path)
    assert manifest == json.loads(manifest_path(path).read_text()) == doc
    assert manifest["spec_id"] == "sift-x"
    np.testing.assert_array_equal(arrays["mine"], rows)
    assert set(arrays) == {"mine"}
    assert len(loaded) == len(index) and loaded.owners == index.owners
    assert 40 in loaded.owners
    same_answers(index, loaded)
    # The loaded index goes on taking additions and removals. (Not to the same graph as
    # the original: the levels of new rows are drawn afresh.)
    loaded.add(50, codes(50, 60))
    loaded.remove([2])
    found = loaded.search(noisy(codes(50, 60), seed=4), k=3)
    assert (found.labels[:, 0] == 50).mean() > 0.9
    assert not (loaded.search(QUERIES, 9).labels == 2).any()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.index", "d.index.json"]


def test_tombstones_survive_and_the_loaded_index_rebuilds_without_them(tmp_path: Path) -> None:
    index = built()
    index.remove([2, 5])  # hidden, not yet rebuilt away
    assert index._dead_rows == 120
    path = tmp_path / "d.index"
    stored.save(path, index, {})
    loaded, manifest, _ = stored.load(path)
    assert manifest["rows"] == 12 * 60 + 4 * 30 and manifest["count"] == len(loaded)
    assert loaded._dead_rows == 120
    assert not np.isin(loaded.search(QUERIES, 9).labels, [2, 5]).any()
    same_answers(index, loaded)
    # Removing most owners rebuilds the graph from the live codes read back from the file.
    loaded.remove([o for o in range(12) if o not in (7,)])
    assert loaded._dead_rows == 0 and loaded.owners == frozenset({7, 20, 21, 22, 23, 40})
    found = loaded.search(noisy(codes(7, 60), seed=3), k=1)
    assert (found.labels[:, 0] == 7).mean() > 0.9
    assert not np.isin(loaded.search(QUERIES, 9).labels, [2, 5, 0, 11]).any()


def test_an_empty_index_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "d.index"
    stored.save(path, DescriptorIndex(), {})
    loaded, _, _ = stored.load(path)
    assert len(loaded) == 0 and loaded.owners == frozenset()
    assert (loaded.search(QUERIES, 2).labels == -1).all()


def rewrite_manifest(path: Path, **changes: Any) -> None:
    mpath = manifest_path(path)
    doc = json.loads(mpath.read_text())
    doc.update(changes)
    mpath.write_text(json.dumps(doc))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def scramble(path: Path) -> None:
    path.write_bytes(np.random.default_rng(1).bytes(path.stat().st_size))


def other_save_under_old_manifest(path: Path) -> None:
    """A crash between the two renames: the new index file under the old manifest."""
    old = manifest_path(path).read_bytes()
    index = built()
    index.add(77, codes(77, 10))
    stored.save(path, index, {})
    manifest_path(path).write_bytes(old)


def random_bytes_with_their_digest(path: Path) -> None:
    """Bytes that pass the checksum but are no saved index (the manifest was made for them)."""
    import hashlib

    data = np.random.default_rng(2).bytes(5000)
    path.write_bytes(data)
    rewrite_manifest(path, checksum=hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (truncate, "fails its checksum"),
        (scramble, "fails its checksum"),
        (other_save_under_old_manifest, "fails its checksum"),
        (random_bytes_with_their_digest, "cannot be decoded"),
        (lambda p: p.unlink(), "is missing"),
        (lambda p: manifest_path(p).unlink(), "manifest .* is missing"),
        (lambda p: manifest_path(p).write_text("{not json"), "unreadable"),
        (lambda p: manifest_path(p).write_text("[1, 2]"), "not a JSON object"),
        (lambda p: rewrite_manifest(p, checksum="0" * 64), "fails its checksum"),
        (lambda p: rewrite_manifest(p, format_version=2), "format_version 2"),
        (lambda p: rewrite_manifest(p, kind="faiss:HNSW32"), "kind"),
        (lambda p: rewrite_manifest(p, links=32), "32 links, not 16"),
        (lambda p: rewrite_manifest(p, count=3), "manifest says 3"),
    ],
)
def test_damaged_or_mismatched_files_are_refused_with_the_reason(
    tmp_path: Path, damage: Callable[[Path], None], reason: str
) -> None:
    path = tmp_path / "d.index"
    stored.save(path, built(), {})
    damage(path)
    with pytest.raises(IndexCorrupt, match=reason):
        stored.load(path)


def test_state_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    state = built().state()
    with pytest.raises(ValueError, match="graph holds 840 rows, the owners 839"):
        DescriptorIndex.from_state({**state, "owners": state["owners"][1:]})
    with pytest.raises(ValueError, match="no live saved"):
        DescriptorIndex.from_state({k: v for k, v in state.items() if k != "live"})
    with pytest.raises(ValueError, match="distinct"):
        DescriptorIndex.from_state({**state, "live": np.array([1, 1], dtype=np.int64)})
    with pytest.raises(ValueError, match="int64"):
        DescriptorIndex.from_state({**state, "owners": state["owners"].astype(np.int32)})
    with pytest.raises(ValueError, match="16 links, not 32"):
        DescriptorIndex.from_state(state, links=32)
    with pytest.raises(ValueError, match="cannot be read"):
        DescriptorIndex.from_state({**state, "graph": state["graph"][:100]})
    with pytest.raises(ValueError, match="are the index's own"):
        stored.save(tmp_path / "d.index", built(), {}, {"owners": state["owners"]})
