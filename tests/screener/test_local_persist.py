"""The descriptor-level index of local features is saved with the other indexes and
loaded at start: a restart reads no keypoint set it already had, catches up with what
changed meanwhile, and rebuilds from the catalog (with a warning) when the file is bad."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from screener import Screener, Settings
from screener.core.samples import drawing, scene
from screener.index._persist import manifest_path
from screener.models.keypoints import LocalFeatures
from tests import needs
from tests.images import composite, png

needs.module("cv2", "local")
pytestmark = pytest.mark.slow

SIGNALS = ["phash", "pdq"]  # the descriptor index depends on the local features only


WORKS = {f"art-{k}": scene(60 + k, size=(384, 288)) for k in range(5)}
LATE = scene(95, size=(384, 288))  # registered after the save


def start(data: Path) -> Screener:
    return Screener(Settings(data_dir=data, signals=SIGNALS))


def votes_of(s: Screener, query: LocalFeatures) -> list[tuple[str, int]]:
    assert s.local is not None
    return s.local.votes.vote(query, top=10, min_votes=1)


@dataclass(frozen=True)
class Saved:
    data: Path
    queries: dict[str, LocalFeatures]  # per work: the keypoints of a small pasted copy
    votes: dict[str, list[tuple[str, int]]]  # ... and their votes before the restart
    labels: dict[str, np.ndarray]  # ... and the descriptor index's raw answers
    distances: dict[str, np.ndarray]
    work_of: dict[int, str]
    sets: int


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Saved:
    data = tmp_path_factory.mktemp("votes") / "data"
    with start(data) as s:
        assert s.local is not None
        for work_id, art in WORKS.items():
            s.registry.register(work_id, [png(art)])
        s.registry.register("char", [png(drawing(5, transparent=True))])  # two keypoint sets
        arts = {**WORKS, "late": LATE}
        queries = {
            w: s.local.extract(s.decode(png(composite(art, 20 + i, (40, 30), 0.7))).image)
            for i, (w, art) in enumerate(arts.items())
        }
        found = {w: s.local.votes.index.search(q.descriptors, 8) for w, q in queries.items()}
        result = Saved(
            data,
            queries,
            {w: votes_of(s, q) for w, q in queries.items()},
            {w: f.labels for w, f in found.items()},
            {w: f.distances for w, f in found.items()},
            dict(s.local.votes._work_of),
            len(s.local.votes._work_of),
        )
    assert result.sets == len(WORKS) + 2
    for work_id in WORKS:  # each pasted copy is voted for (else these tests prove little)
        assert work_id in [w for w, _ in result.votes[work_id][:3]], result.votes[work_id]
    return result


@pytest.fixture
def data(saved: Saved, tmp_path: Path) -> Path:
    """A copy of the saved data directory, for one test to change."""
    return Path(shutil.copytree(saved.data, tmp_path / "data"))


def descriptor_file(data: Path) -> Path:
    files = list((data / "indexes").glob("descriptors-*.index"))
    assert len(files) == 1, files
    return files[0]


def test_a_restart_loads_the_saved_index_and_reads_no_keypoints(saved: Saved, data: Path) -> None:
    path = descriptor_file(data)
    before = path.read_bytes()
    with start(data) as s:
        assert s.local is not None
        votes = s.local.votes
        assert votes.loaded == path
        assert votes.sets_read == 0  # nothing read from the catalog: not rebuilt
        assert votes._work_of == saved.work_of
        for work_id, query in saved.queries.items():
            found = votes.index.search(query.descriptors, 8)
            np.testing.assert_array_equal(found.labels, saved.labels[work_id])
            np.testing.assert_array_equal(found.distances, saved.distances[work_id])
            assert votes_of(s, query) == saved.votes[work_id]
        assert votes.save() is False  # unchanged: not written again
    assert path.read_bytes() == before


def test_changes_made_elsewhere_after_the_save_are_caught_up(saved: Saved, data: Path) -> None:
    other = start(data)  # another process on the same data directory, that never saves
    assert other.local is not None and other.local.votes.loaded is not None
    other.registry.register("late", [png(LATE)])
    other.registry.remove("art-1")
    other.catalog.close()  # gone without saving (killed, or still running)
    with start(data) as s:
        assert s.local is not None
        votes = s.local.votes
        assert votes.loaded == descriptor_file(data)
        assert votes.sets_read == 1  # only the new work's keypoints were read
        assert set(votes._work_of.values()) == {*WORKS, "char", "late"} - {"art-1"}
        assert votes_of(s, saved.queries["late"])[0][0] == "late"
        gone = [row for row, work in saved.work_of.items() if work == "art-1"]
        for query in saved.queries.values():
            assert "art-1" not in dict(votes_of(s, query))
            assert not np.isin(votes.index.search(query.descriptors, 8).labels, gone).any()
        # Among the first three, as the fixture asks of every work (the 32-byte codes of
        # the compact index tie art-3 with the drawn art-2 on this small copy).
        assert "art-3" in [w for w, _ in votes_of(s, saved.queries["art-3"])[:3]]
    with start(data) as again:  # the close saved the caught-up index
        assert again.local is not None
        assert again.local.votes.sets_read == 0
        assert votes_of(again, saved.queries["late"])[0][0] == "late"


def test_a_removal_is_logged_not_rewritten_and_survives_a_restart(saved: Saved, data: Path) -> None:
    path = descriptor_file(data)
    base = path.read_bytes()
    with start(data) as s:
        assert s.local is not None
        s.registry.remove("art-2")
    assert path.read_bytes() == base  # the close appended to the log
    with start(data) as s:
        assert s.local is not None
        votes = s.local.votes
        assert votes.loaded is not None and votes.sets_read == 0
        gone = [row for row, work in saved.work_of.items() if work == "art-2"]
        assert "art-2" not in dict(votes_of(s, saved.queries["art-2"]))
        for query in saved.queries.values():
            assert not np.isin(votes.index.search(query.descriptors, 8).labels, gone).any()
        assert votes_of(s, saved.queries["art-4"])[0][0] == "art-4"


def test_a_torn_log_is_named_and_what_it_lost_is_read_from_the_catalog(
    saved: Saved, data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = descriptor_file(data)
    log_file = path.with_name(path.name + ".log")
    with start(data) as s:
        s.registry.register("late", [png(LATE)])
    before = log_file.stat().st_size
    with start(data) as s:
        s.registry.remove("art-1")
    grown = log_file.read_bytes()
    assert len(grown) > before  # the removal was appended
    log_file.write_bytes(grown[:-7])  # a crash in the middle of the last append
    with (
        caplog.at_level(logging.WARNING, logger="screener.matching.verification"),
        start(data) as s,
    ):
        assert s.local is not None
        votes = s.local.votes
        assert votes.loaded == path
        assert set(votes._work_of.values()) == {*WORKS, "char", "late"} - {"art-1"}
        assert votes_of(s, saved.queries["late"])[0][0] == "late"
        assert "art-1" not in dict(votes_of(s, saved.queries["art-1"]))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(log_file) in w and "torn" in w for w in warned), warned
    with start(data) as s:  # the close compacted: a clean log, nothing read again
        assert s.local is not None
        assert s.local.votes.sets_read == 0 and log_file.stat().st_size < len(grown)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size - 100])


def random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(3).bytes(path.stat().st_size))


def edit_manifest(**changes: object) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        doc = json.loads(manifest_path(path).read_text())
        doc.update(changes)
        manifest_path(path).write_text(json.dumps(doc))

    return edit


@pytest.fixture(scope="module")
def fresh(saved: Saved, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Votes of an index built from the catalog alone (no saved file)."""
    data = Path(shutil.copytree(saved.data, tmp_path_factory.mktemp("fresh") / "data"))
    descriptor_file(data).unlink()
    with start(data) as s:
        assert s.local is not None
        assert s.local.votes.loaded is None and s.local.votes.sets_read == saved.sets
        return {w: votes_of(s, q) for w, q in saved.queries.items()}


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (truncate, "fails its checksum"),
        (random_bytes, "fails its checksum"),
        (edit_manifest(checksum="ab" * 32), "fails its checksum"),
        (edit_manifest(spec_id="sift-other"), "made for keypoint spec 'sift-other'"),
        (edit_manifest(per_set=100), "built with {'per_set': 100}"),
        # A save of the earlier format (HNSW over 8-bit codes) is rebuilt, not read.
        (edit_manifest(format_version=1, kind="descriptors:HNSW,SQ8"), "format_version 1"),
        (lambda p: manifest_path(p).unlink(), "is missing"),
    ],
)
def test_a_bad_file_is_named_rebuilt_and_replaced(
    saved: Saved,
    fresh: dict[str, object],
    data: Path,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[Path], None],
    reason: str,
) -> None:
    path = descriptor_file(data)
    damage(path)
    with (
        caplog.at_level(logging.WARNING, logger="screener.matching.verification"),
        start(data) as s,
    ):
        assert s.local is not None
        votes = s.local.votes
        assert votes.loaded is None and votes.sets_read == saved.sets
        assert {w: votes_of(s, q) for w, q in saved.queries.items()} == fresh
    # The descriptor index's warnings (the screener's others, such as a policy fitted
    # under another OpenCV where this runs off the lock, are not this test's subject).
    warned = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "screener.matching.verification"
    ]
    assert len(warned) == 1 and str(path) in warned[0] and reason in warned[0], warned
    assert "building it from the catalog" in warned[0]
    with start(data) as s:  # the close wrote a good file in its place
        assert s.local is not None
        assert s.local.votes.loaded == path and s.local.votes.sets_read == 0


def test_a_saved_index_of_another_catalog_is_not_used(
    saved: Saved, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Same row ids, other works: the catalog was replaced under the index folder.
    data = tmp_path / "data"
    with start(data) as s:
        for k in range(3):
            s.registry.register(f"other-{k}", [png(scene(200 + k, size=(384, 288)))])
    shutil.copy(descriptor_file(saved.data), descriptor_file(data))
    shutil.copy(manifest_path(descriptor_file(saved.data)), manifest_path(descriptor_file(data)))
    with (
        caplog.at_level(logging.WARNING, logger="screener.matching.verification"),
        start(data) as s,
    ):
        assert s.local is not None
        assert s.local.votes.loaded is None
        assert set(s.local.votes._work_of.values()) == {"other-0", "other-1", "other-2"}
    assert any("another catalog" in r.getMessage() for r in caplog.records)


def test_without_local_features_nothing_is_saved(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Screener(Settings(data_dir=data, signals=SIGNALS, local_features=False)) as s:
        s.registry.register("w", [png(WORKS["art-0"])])
        s.registry.save()
    assert not list((data / "indexes").glob("descriptors-*"))


@pytest.fixture(autouse=True)
def _no_temporaries(tmp_path: Path) -> Iterator[None]:
    yield
    leftovers = list(tmp_path.rglob("*.tmp"))
    assert not leftovers, leftovers
