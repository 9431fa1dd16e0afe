"""The save format: manifest contents, atomic replacement, and refusing damaged files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from screener.index import IndexCorrupt, IndexSpec, create, load, read_manifest
from screener.index._persist import write_atomic

SPEC = IndexSpec("pdq", 64, "hamming")


def saved(tmp_path: Path, structure: str = "BMIH4") -> Path:
    index = create(SPEC, structure)
    index.add(np.arange(10), np.arange(80, dtype=np.uint8).reshape(10, 8))
    index.remove(np.array([3]))
    path = tmp_path / "pdq.index"
    index.save(path, high_water=77)
    return path


def test_manifest_document(tmp_path: Path) -> None:
    path = saved(tmp_path)
    doc = json.loads(Path(f"{path}.json").read_text())
    assert doc["format_version"] == 1
    assert (doc["spec_id"], doc["dim"], doc["metric"]) == ("pdq", 64, "hamming")
    assert doc["kind"] == "faiss:BMIH4"
    assert doc["count"] == 9
    assert doc["high_water"] == 77
    assert doc["checksum"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert doc["extra"]["tombstones"] == 1
    assert doc["extra"]["params"] == {"compact_min": 1024, "k_flips": 1, "max_flips": 2}
    assert read_manifest(path).checksum == doc["checksum"]


def test_save_replaces_and_leaves_no_temporaries(tmp_path: Path) -> None:
    path = saved(tmp_path)
    index, _ = load(path, SPEC)
    index.remove(np.arange(5))
    index.save(path, high_water=78)
    loaded, manifest = load(path, SPEC)
    assert manifest.high_water == 78
    assert loaded.ids().tolist() == [5, 6, 7, 8, 9]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pdq.index", "pdq.index.json"]


def test_write_atomic_cleans_up_after_a_failed_write(tmp_path: Path) -> None:
    target = tmp_path / "f"
    write_atomic(target, b"old")
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.update(format_version=2), "format_version"),
        (lambda d: d.pop("checksum"), "checksum"),
        (lambda d: d.update(dim="64"), "dim"),
        (lambda d: d.update(count=True), "count"),
        (lambda d: d.update(metric="cosine"), "metric"),
        (lambda d: d.update(kind="milvus"), "unknown index kind"),
        (lambda d: d.update(kind="faiss:BMIH8"), "not 'BMIH8'"),
        (lambda d: d["extra"].update(params={"bogus": 1}), "cannot be restored"),
    ],
)
def test_bad_manifests_are_corrupt(tmp_path: Path, edit: Any, match: str) -> None:
    path = saved(tmp_path)
    mpath = Path(f"{path}.json")
    doc = json.loads(mpath.read_text())
    edit(doc)
    mpath.write_text(json.dumps(doc))
    with pytest.raises(IndexCorrupt, match=match):
        load(path, SPEC)


def test_manifest_that_is_not_an_object(tmp_path: Path) -> None:
    path = saved(tmp_path)
    Path(f"{path}.json").write_text("[1, 2]")
    with pytest.raises(IndexCorrupt, match="not a JSON object"):
        read_manifest(path)


def test_valid_checksum_over_garbage_is_still_corrupt(tmp_path: Path) -> None:
    """A manifest consistent with junk bytes (not a crash, but caught all the same)."""
    path = saved(tmp_path, "numpy")
    path.write_bytes(b"junk")
    mpath = Path(f"{path}.json")
    doc = json.loads(mpath.read_text())
    doc["checksum"] = hashlib.sha256(b"junk").hexdigest()
    mpath.write_text(json.dumps(doc))
    with pytest.raises(IndexCorrupt, match="cannot be decoded"):
        load(path, SPEC)
