"""Saving and loading the descriptor-level index (a base file and an append-only log):
the same answers after a round trip, appends instead of rewrites, a torn log tail ignored,
compaction equivalent to replay, and every damaged or mismatched base refused with the
reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from screener.index import IndexCorrupt
from screener.index import _journal as journal
from screener.index import descriptors as stored
from screener.index._persist import manifest_path
from screener.index.descriptors import DescriptorIndex, Layout
from tests.index.test_descriptors import LAYOUT, book, codes, new_index
from tests.index.test_descriptors import noisy as near


def noisy(x: npt.NDArray[np.uint8], seed: int) -> npt.NDArray[np.uint8]:
    return near(x, seed, spread=6)


def built() -> DescriptorIndex:
    index = new_index()
    index.add_many([(owner, codes(owner, 60)) for owner in range(12)], {3: "w3"})
    index.add(40, np.zeros((0, 128), dtype=np.uint8), "empty")  # no descriptors
    index.add_many([(owner, codes(owner, 30)) for owner in range(20, 24)])
    return index


QUERIES = np.concatenate([noisy(codes(o, 60), seed=o + 100) for o in (2, 5, 21)] + [codes(99, 40)])


def same_answers(a: DescriptorIndex, b: DescriptorIndex) -> None:
    assert a.labels == b.labels and len(a) == len(b)
    for k in (1, 4, 9):
        x, y = a.search(QUERIES, k), b.search(QUERIES, k)
        np.testing.assert_array_equal(x.labels, y.labels)
        np.testing.assert_array_equal(x.distances, y.distances)


def load(path: Path) -> stored.Loaded:
    return stored.load(path, LAYOUT)


def test_round_trip_gives_identical_answers(tmp_path: Path) -> None:
    index = built()
    path = tmp_path / "d.index"
    assert stored.save(path, index, {"spec_id": "sift-x"})  # the first save writes a base
    loaded = load(path)
    assert loaded.manifest == json.loads(manifest_path(path).read_text())
    assert loaded.manifest["spec_id"] == "sift-x" and loaded.replayed == 0
    assert loaded.manifest["rows"] == len(index) == 12 * 60 + 4 * 30
    assert loaded.index.labels[3] == "w3" and loaded.index.labels[40] == "empty"
    same_answers(index, loaded.index)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.index", "d.index.json", "d.index.log"]


def test_later_saves_append_to_the_log_and_replay_to_the_same_index(tmp_path: Path) -> None:
    index = built()
    path = tmp_path / "d.index"
    stored.save(path, index, {}, compact_above=10.0)
    base = path.read_bytes()
    index.add(50, codes(50, 20), "w50")
    index.remove([2, 40])
    assert not stored.save(path, index, {}, compact_above=10.0)  # appended, base untouched
    index.add(51, codes(51, 20))
    assert not stored.save(path, index, {}, compact_above=10.0)
    assert path.read_bytes() == base
    loaded = load(path)
    assert loaded.replayed == 3 and loaded.log_problem is None
    same_answers(index, loaded.index)
    assert not np.isin(loaded.index.search(QUERIES, 9).labels, [2]).any()
    # A save with nothing new appends nothing.
    size = journal.log_path(path).stat().st_size
    assert not stored.save(path, loaded.index, {}, compact_above=10.0)
    assert journal.log_path(path).stat().st_size == size


def test_removal_then_save_then_load(tmp_path: Path) -> None:
    index = built()
    path = tmp_path / "d.index"
    stored.save(path, index, {})
    index.remove([0, 1, 2, 3, 20])
    stored.save(path, index, {}, compact_above=10.0)
    loaded = load(path).index
    assert loaded.owners == frozenset(range(4, 12)) | {21, 22, 23, 40}
    assert len(loaded) == 8 * 60 + 3 * 30
    assert not np.isin(loaded.search(QUERIES, 9).labels, [0, 1, 2, 3, 20]).any()
    loaded.add(2, codes(2, 60))  # a removed owner may come back
    assert (loaded.search(noisy(codes(2, 60), 1), 1).labels[:, 0] == 2).mean() > 0.9


def test_a_torn_log_tail_is_ignored_with_its_reason_and_the_next_save_compacts(
    tmp_path: Path,
) -> None:
    index = built()
    path = tmp_path / "d.index"
    stored.save(path, index, {}, compact_above=10.0)
    index.add(50, codes(50, 20))
    stored.save(path, index, {}, compact_above=10.0)
    good = journal.log_path(path).read_bytes()
    index.add(51, codes(51, 20))
    index.remove([3])
    stored.save(path, index, {}, compact_above=10.0)
    whole = journal.log_path(path).read_bytes()
    for cut in (len(good) + 5, len(whole) - 1):  # mid-header of a record, its last byte
        journal.log_path(path).write_bytes(whole[:cut])
        loaded = load(path)
        assert loaded.log_problem is not None and "torn" in loaded.log_problem
        assert 50 in loaded.index.owners and 3 in loaded.index.owners  # never half applied
    # A flipped byte in a record's rows fails its checksum: replay stops before it.
    damaged = bytearray(whole)
    damaged[len(good) + 100] ^= 0xFF
    journal.log_path(path).write_bytes(bytes(damaged))
    loaded = load(path)
    assert "damaged" in str(loaded.log_problem) and 51 not in loaded.index.owners
    assert stored.save(path, loaded.index, {}, compact_above=10.0)  # compacted, not appended
    again = load(path)
    assert again.log_problem is None and again.replayed == 0
    same_answers(loaded.index, again.index)


def test_compaction_is_equivalent_to_replaying_the_log(tmp_path: Path) -> None:
    index = built()
    logged, compacted = tmp_path / "a.index", tmp_path / "b.index"
    stored.save(logged, index, {}, compact_above=10.0)
    for owner in range(60, 66):
        index.add(owner, codes(owner, 40), f"w{owner}")
        index.remove([owner - 55])
        assert not stored.save(logged, index, {}, compact_above=10.0)
    assert stored.save(compacted, index, {})  # a fresh base of the same state
    replayed, rewritten = load(logged), load(compacted)
    assert replayed.replayed == 12 and rewritten.replayed == 0
    same_answers(replayed.index, rewritten.index)
    same_answers(index, rewritten.index)


def test_the_log_is_compacted_once_it_outgrows_its_share_of_the_base(tmp_path: Path) -> None:
    index = built()
    path = tmp_path / "d.index"
    stored.save(path, index, {}, compact_above=0.5)
    base_size = path.stat().st_size
    rewrites = 0
    for owner in range(100, 130):
        index.add(owner, codes(owner, 60))
        rewritten = stored.save(path, index, {}, compact_above=0.5)
        rewrites += rewritten
        assert journal.log_path(path).stat().st_size <= 0.5 * path.stat().st_size + 1
    assert 0 < rewrites < 10 and path.stat().st_size > base_size
    same_answers(index, load(path).index)


def test_a_stale_log_of_another_base_is_never_replayed(tmp_path: Path) -> None:
    """A crash after a compaction wrote its base, before it started the new log."""
    index = built()
    path = tmp_path / "d.index"
    stored.save(path, index, {}, compact_above=10.0)
    index.add(50, codes(50, 20))
    stored.save(path, index, {}, compact_above=10.0)
    stale = journal.log_path(path).read_bytes()
    index.remove([50])
    stored.save(path, index, {}, compact_above=0.0)  # compacts
    journal.log_path(path).write_bytes(stale)
    loaded = load(path)
    assert "does not follow this base" in str(loaded.log_problem)
    assert 50 not in loaded.index.owners


def test_an_empty_index_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "d.index"
    stored.save(path, new_index(), {})
    loaded = load(path).index
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
        (lambda p: rewrite_manifest(p, format_version=1), "format_version 1"),  # older
        (lambda p: rewrite_manifest(p, kind="descriptors:HNSW,SQ8"), "kind"),
        (lambda p: rewrite_manifest(p, rows=3), "manifest says 3"),
    ],
)
def test_damaged_or_mismatched_files_are_refused_with_the_reason(
    tmp_path: Path, damage: Callable[[Path], None], reason: str
) -> None:
    path = tmp_path / "d.index"
    stored.save(path, built(), {})
    damage(path)
    with pytest.raises(IndexCorrupt, match=reason):
        load(path)


def test_another_layout_and_state_that_does_not_fit_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.index"
    stored.save(path, built(), {})
    with pytest.raises(IndexCorrupt, match="kind"):
        stored.load(path, Layout(lists=32, code_bytes=32, probes=4))
    state = built().state()
    with pytest.raises(ValueError, match="16 lists and 32-byte codes, not 32 and 32"):
        DescriptorIndex.from_state(state, Layout(lists=32, code_bytes=32), book)
    with pytest.raises(ValueError, match="no labels saved"):
        DescriptorIndex.from_state({k: v for k, v in state.items() if k != "labels"}, LAYOUT)
    with pytest.raises(ValueError, match="distinct"):
        DescriptorIndex.from_state({**state, "owners": np.array([1, 1], np.int64)}, LAYOUT)
    with pytest.raises(ValueError, match="one per owner"):
        DescriptorIndex.from_state({**state, "labels": state["labels"][1:]}, LAYOUT)
    with pytest.raises(ValueError, match="cannot be read"):
        DescriptorIndex.from_state({**state, "ivf": state["ivf"][:100]}, LAYOUT)
