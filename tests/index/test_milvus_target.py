"""The Milvus backend's settings reach the indexes as a typed ``MilvusTarget``, not as a
string packed into ``index_structure``; bad settings are refused before anything connects."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from screener.core.errors import ConfigurationError
from screener.core.settings import Settings
from screener.matching.signal_indexes import IndexSet, MilvusTarget
from screener.models.hashes import PHash
from screener.store.catalog import Catalog


def test_settings_make_a_target_and_keep_the_structure_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCREENER_INDEX_BACKEND", "milvus")
    monkeypatch.setenv("SCREENER_MILVUS_URI", "http://milvus.internal:19530")
    monkeypatch.setenv("SCREENER_MILVUS_TOKEN", "root:secret")
    monkeypatch.setenv("SCREENER_MILVUS_COLLECTION_PREFIX", "tenant_a")
    monkeypatch.setenv("SCREENER_MILVUS_CONSISTENCY", "Bounded")
    monkeypatch.setenv("SCREENER_INDEX_STRUCTURE", "HNSW")
    settings = Settings()
    assert settings.index_structure == "HNSW"
    assert MilvusTarget.from_settings(settings) == MilvusTarget(
        "http://milvus.internal:19530", "root:secret", "tenant_a", "Bounded"
    )


def test_faiss_backend_has_no_target() -> None:
    assert MilvusTarget.from_settings(Settings(index_structure="HNSW32")) is None


def test_milvus_backend_without_uri_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs SCREENER_MILVUS_URI"):
        Settings(index_backend="milvus")
    with pytest.raises(ValidationError, match="not a Milvus structure"):
        Settings(index_backend="milvus", milvus_uri="http://x:1", index_structure="HNSW32")
    settings = Settings().model_copy(update={"index_backend": "milvus"})  # validation skipped
    with pytest.raises(ConfigurationError, match="needs SCREENER_MILVUS_URI"):
        MilvusTarget.from_settings(settings)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"uri": " "}, "needs a server URI"),
        ({"uri": "http://x:1", "prefix": "no-dash"}, "collection prefix"),
        ({"uri": "http://x:1", "consistency": "Sometimes"}, "consistency"),
    ],
)
def test_bad_target_is_a_configuration_error(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        MilvusTarget(**fields)


def test_index_set_takes_the_target_as_its_own_argument(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    try:
        with pytest.raises(ConfigurationError, match="must be a MilvusTarget"):
            IndexSet(catalog, {"phash": PHash()}, tmp_path, milvus="milvus{}")  # type: ignore[arg-type]
        target = MilvusTarget("http://127.0.0.1:9")
        indexes = IndexSet(catalog, {"phash": PHash()}, tmp_path, "HNSW", milvus=target)
        assert indexes.milvus is target and indexes.structure == "HNSW"
        # A dense structure does not apply to a hash: its collection takes "auto".
        assert indexes._milvus_structure("phash") == "auto"
        assert IndexSet(catalog, {"phash": PHash()}, tmp_path)._milvus_structure("phash") == (
            "auto"
        )
        bin_ivf = IndexSet(catalog, {"phash": PHash()}, tmp_path, "BIN_IVF_FLAT", milvus=target)
        assert bin_ivf._milvus_structure("phash") == "BIN_IVF_FLAT"
    finally:
        catalog.close()
