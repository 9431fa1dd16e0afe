"""Switching an installation from FAISS to Milvus loses no work.

An installation registers works with the embedded defaults (SQLite + FAISS files), then
the operator sets ``SCREENER_INDEX_BACKEND=milvus`` and runs ``screener index rebuild``
(docs/deploy.md): every fingerprint must be in Milvus, ``screener index verify`` must
pass, and every copy must still be matched to its work.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from screener import Screener, Settings
from screener.cli import app
from screener.samples import scene

pytestmark = pytest.mark.slow

SIGNALS = "phash,pdq,sscd"


def test_faiss_installation_moves_to_milvus_with_every_work(
    tmp_path: Path, milvus_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    works = {f"work-{n}": scene(9200 + n) for n in range(6)}
    for name, image in works.items():
        image.save(tmp_path / f"{name}.png")
    with Screener(Settings(data_dir=data_dir, signals=SIGNALS.split(","))) as faiss_screener:
        for name in works:
            faiss_screener.registry.register(name, [tmp_path / f"{name}.png"])
        faiss_screener.registry.remove("work-5")  # a removal in the log, too
        before = {
            name: faiss_screener.check(tmp_path / f"{name}.png").top_work_id for name in works
        }
        sizes = faiss_screener.indexes.sizes()
    assert before == {**{name: name for name in works if name != "work-5"}, "work-5": None}

    prefix = f"migrate_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("SCREENER_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SCREENER_SIGNALS", SIGNALS)
    monkeypatch.setenv("SCREENER_INDEX_BACKEND", "milvus")
    monkeypatch.setenv("SCREENER_MILVUS_URI", milvus_uri)
    monkeypatch.setenv("SCREENER_MILVUS_COLLECTION_PREFIX", prefix)
    runner = CliRunner()
    rebuilt = runner.invoke(app, ["index", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    verified = runner.invoke(app, ["index", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "milvus:" in verified.output

    with Screener(Settings()) as milvus_screener:
        assert milvus_screener.indexes.milvus is not None
        assert milvus_screener.indexes.sizes() == sizes
        after = {
            name: milvus_screener.check(tmp_path / f"{name}.png").top_work_id for name in works
        }
        assert after == before
        # And it keeps working: a new registration and a removal go to Milvus.
        milvus_screener.registry.register("work-5", [tmp_path / "work-5.png"])
        milvus_screener.registry.remove("work-0")
        assert milvus_screener.check(tmp_path / "work-5.png").top_work_id == "work-5"
        assert milvus_screener.check(tmp_path / "work-0.png").top_work_id is None
        assert all(report.ok for report in milvus_screener.indexes.verify())
