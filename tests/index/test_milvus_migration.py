"""Switching an installation from FAISS to Milvus loses no work, by either way that
docs/deploy.md gives: ``screener index rebuild`` (from the catalog) or ``screener index
import`` of a file that ``screener index export`` wrote.

One SQLite + FAISS installation is made for the module: works registered, one removed,
the indexes exported, and then more work done (a registration and a removal that only the
catalog's log holds, past the export's mark). Each test moves its own copy of it to
Milvus: every fingerprint must be in Milvus, ``screener index verify`` must pass, and
every check must find the same top work as before.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from screener import Screener, Settings
from screener.cli import app
from screener.core.samples import scene
from screener.matching.index_archive import export_indexes

pytestmark = pytest.mark.slow

SIGNALS = "phash,pdq,sscd"


@dataclass(frozen=True)
class Installation:
    data_dir: Path
    images: Path
    exported: Path
    queries: dict[str, Path]
    before: dict[str, str | None]
    sizes: dict[str, int]


@pytest.fixture(scope="module")
def faiss_installation(tmp_path_factory: pytest.TempPathFactory) -> Installation:
    root = tmp_path_factory.mktemp("faiss-installation")
    data_dir, images = root / "data", root / "images"
    images.mkdir()
    queries = {}
    for n in range(6):
        image = scene(9200 + n)
        image.save(images / f"work-{n}.png")
        queries[f"work-{n}"] = images / f"work-{n}-copy.jpg"
        image.resize((300, 225)).save(queries[f"work-{n}"], quality=75)
    queries["unrelated"] = images / "unrelated.png"
    scene(9299).save(queries["unrelated"])
    exported = root / "indexes.zip"
    settings = Settings(data_dir=data_dir, signals=SIGNALS.split(","))
    with Screener(settings) as screener:
        for n in range(5):
            screener.registry.register(f"work-{n}", [images / f"work-{n}.png"])
        screener.registry.remove("work-4")  # a removal in the log, too
        export_indexes(screener.indexes, exported)
        # Work goes on after the export: only the catalog's log holds this.
        screener.registry.register("work-5", [images / "work-5.png"])
        screener.registry.remove("work-3")
        before = {name: screener.check(path).top_work_id for name, path in queries.items()}
        sizes = screener.indexes.sizes()
    assert before == {
        **{f"work-{n}": f"work-{n}" for n in (0, 1, 2, 5)},
        "work-3": None,
        "work-4": None,
        "unrelated": None,
    }
    return Installation(data_dir, images, exported, queries, before, sizes)


def _switch_to_milvus(
    installation: Installation, tmp_path: Path, milvus_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy of the installation, and the settings that point it at Milvus."""
    data_dir = tmp_path / "data"
    shutil.copytree(installation.data_dir, data_dir)
    monkeypatch.setenv("SCREENER_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SCREENER_SIGNALS", SIGNALS)
    monkeypatch.setenv("SCREENER_INDEX_BACKEND", "milvus")
    monkeypatch.setenv("SCREENER_MILVUS_URI", milvus_uri)
    monkeypatch.setenv("SCREENER_MILVUS_COLLECTION_PREFIX", f"migrate_{uuid.uuid4().hex[:8]}")


def _verified_and_same(installation: Installation) -> Screener:
    verified = CliRunner().invoke(app, ["index", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "milvus:" in verified.output
    screener = Screener(Settings())
    assert screener.indexes.milvus is not None
    assert screener.indexes.sizes() == installation.sizes
    after = {name: screener.check(path).top_work_id for name, path in installation.queries.items()}
    assert after == installation.before
    return screener


def test_rebuild_moves_every_work_to_milvus(
    faiss_installation: Installation,
    tmp_path: Path,
    milvus_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _switch_to_milvus(faiss_installation, tmp_path, milvus_uri, monkeypatch)
    rebuilt = CliRunner().invoke(app, ["index", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    with _verified_and_same(faiss_installation) as milvus_screener:
        # And it keeps working: a new registration and a removal go to Milvus.
        milvus_screener.registry.register("work-4", [faiss_installation.images / "work-4.png"])
        milvus_screener.registry.remove("work-0")
        assert milvus_screener.check(faiss_installation.queries["work-4"]).top_work_id == "work-4"
        assert milvus_screener.check(faiss_installation.queries["work-0"]).top_work_id is None
        assert all(report.ok for report in milvus_screener.indexes.verify())


def test_export_then_import_moves_every_work_to_milvus(
    faiss_installation: Installation,
    tmp_path: Path,
    milvus_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The file holds the state at its mark; the work done after the export is replayed
    from the catalog's log."""
    _switch_to_milvus(faiss_installation, tmp_path, milvus_uri, monkeypatch)
    loaded = CliRunner().invoke(app, ["index", "import", str(faiss_installation.exported)])
    assert loaded.exit_code == 0, loaded.output
    assert "sscd:" in loaded.output
    with _verified_and_same(faiss_installation):
        pass
