"""``screener index export`` / ``screener index import``: moving the indexes through one
file, and refusing files that would not reproduce this catalog's indexes.

Real parts: SQLite catalogs and FAISS index files. Moving an installation from FAISS to a
real Milvus by export and import is in ``tests/index/test_milvus_migration.py``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from screener import Screener, Settings
from screener.cli import app
from screener.core.samples import scene

HASHES = "phash,pdq"


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _install(data_dir: Path, seeds: range, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """An installation at ``data_dir`` with one work per seed (hash signals only); the
    sizes of its indexes."""
    monkeypatch.setenv("SCREENER_SIGNALS", HASHES)
    monkeypatch.setenv("SCREENER_LOCAL_FEATURES", "false")
    with Screener(Settings(data_dir=data_dir)) as screener:
        for seed in seeds:
            image = data_dir.parent / f"{data_dir.name}-{seed}.png"
            scene(seed).save(image)
            screener.registry.register(f"work-{seed}", [image])
        return screener.indexes.sizes()


def _index_files(data_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((data_dir / "indexes").iterdir())}


def _rewrite(source: Path, target: Path, change: dict[str, bytes]) -> None:
    """A copy of the export ``source`` with some members' bytes replaced."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info.filename, change.get(info.filename, old.read(info.filename)))


def _flip_inside(archive: bytes, member_start: bytes) -> bytes:
    """``archive`` with one byte flipped inside the member whose data starts so."""
    at = archive.index(member_start) + 7
    return archive[:at] + bytes([archive[at] ^ 0x01]) + archive[at + 1 :]


def test_round_trip_and_bad_files_are_refused_without_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, other = tmp_path / "home", tmp_path / "other"
    sizes = _install(home, range(3), monkeypatch)
    _install(other, range(50, 52), monkeypatch)  # fewer works: an earlier log position
    exported = tmp_path / "home.zip"
    made = cli("index", "export", str(exported), "--data-dir", str(home))
    assert made.exit_code == 0, made.output
    assert f"phash: {sizes['phash']} fingerprints at log position" in made.output
    foreign = tmp_path / "other.zip"
    assert cli("index", "export", str(foreign), "--data-dir", str(other)).exit_code == 0
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed

    manifest = json.loads(zipfile.ZipFile(exported).read("manifest.json"))
    pdq = manifest["signals"]["pdq"]
    vectors = zipfile.ZipFile(exported).read("pdq.vectors")
    assert pdq["count"] == sizes["pdq"] > 3 and len(vectors) == pdq["count"] * 32
    respec = json.loads(json.dumps(manifest))
    respec["signals"]["pdq"]["spec_id"] = "pdq/another-model"
    flipped = bytearray(vectors)
    flipped[5] ^= 0xFF
    ids = np.frombuffer(zipfile.ZipFile(exported).read("pdq.ids"), dtype="<i8").copy()
    ids[-1] = 10**9  # an id this catalog never had, in a file whose digests are right
    unknown = json.loads(json.dumps(manifest))
    unknown["signals"]["pdq"]["ids_sha256"] = hashlib.sha256(ids.tobytes()).hexdigest()
    bad: dict[str, tuple[bytes | None, str]] = {
        "truncated": (exported.read_bytes()[:-200], "not a complete index export"),
        "not-a-zip": (b"just some text\n", "not a complete index export"),
        "other-spec": (json.dumps(respec).encode(), "made for pdq/another-model"),
        "altered": (bytes(flipped), "sha256 (the file was altered)"),
        "unknown-id": (ids.tobytes(), "1 ids the catalog does not have (e.g. 1000000000)"),
        "foreign": (None, "vectors differ from the catalog's"),
        "bit-rot": (_flip_inside(exported.read_bytes(), vectors[:64]), "pdq.vectors is damaged"),
    }
    before = _index_files(home)
    for name, (content, message) in bad.items():
        path = tmp_path / f"{name}.zip"
        if name == "other-spec":
            _rewrite(exported, path, {"manifest.json": content or b""})
        elif name == "altered":
            _rewrite(exported, path, {"pdq.vectors": content or b""})
        elif name == "unknown-id":
            changed = {"pdq.ids": content or b"", "manifest.json": json.dumps(unknown).encode()}
            _rewrite(exported, path, changed)
        elif content is None:
            path = foreign
        else:
            path.write_bytes(content)
        refused = cli("index", "import", str(path), "--data-dir", str(home))
        assert refused.exit_code == 2, (name, refused.output)
        assert message in refused.output, (name, refused.output)
        assert "Traceback" not in refused.output
        assert _index_files(home) == before, name  # nothing was written
    missing = cli("index", "import", str(tmp_path / "nope.zip"), "--data-dir", str(home))
    assert missing.exit_code == 2 and "is not a file" in missing.output
    for target, message in ((tmp_path, "is a folder"), (tmp_path / "no" / "x.zip", "not exist")):
        refused = cli("index", "export", str(target), "--data-dir", str(home))
        assert refused.exit_code == 2 and message in refused.output, refused.output

    # The good file restores indexes that were lost, and they agree with the catalog.
    shutil.rmtree(home / "indexes")
    (home / "indexes").mkdir()
    with Screener(Settings(data_dir=home)) as screener:  # empty indexes, caught up from 0
        screener.indexes.indexes["pdq"].remove(screener.indexes.indexes["pdq"].ids())
        screener.indexes.save()
    monkeypatch.setenv("SCREENER_DATA_DIR", str(home))
    assert cli("index", "verify").exit_code == 1
    loaded = cli("index", "import", str(exported))
    assert loaded.exit_code == 0, loaded.output
    assert cli("index", "verify").exit_code == 0
