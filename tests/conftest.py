"""Fixtures shared by the screener tests."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from screener import Screener, Settings
from tests.milvus import MilvusStartError, MilvusTestServer, MilvusUnavailable
from tests.postgres import PostgresServer, PostgresUnavailable

REPO_ROOT = Path(__file__).resolve().parents[1]
PEERS_DIR = REPO_ROOT.parent / "shared" / "data" / "peers"


@pytest.fixture(scope="session")
def peers_dir() -> Path:
    """The peer test images (used in place, read-only); skips when they are not there."""
    if not PEERS_DIR.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the peer test images at {PEERS_DIR}")
        pytest.skip(f"peer test images not found at {PEERS_DIR} (../shared/data/peers)")
    return PEERS_DIR


@pytest.fixture(scope="session")
def peer_screener(peers_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Screener]:
    """A screener with the peer protocol's two works registered, default offline settings."""
    data_dir = tmp_path_factory.mktemp("peers-screener")
    with Screener(Settings(data_dir=data_dir)) as screener:
        screener.registry.register(
            "bridge", [peers_dir / "threatexchange-pdq/bridge-mods/aaa-orig.jpg"], title="Bridge"
        )
        screener.registry.register(
            "ukbench00120", [peers_dir / "imagededup/mixed_images/ukbench00120.jpg"]
        )
        yield screener


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on loopback for the session (tests/postgres.py).

    Skips when the server binaries or psycopg are missing; in CI their absence fails.
    """
    try:
        if importlib.util.find_spec("psycopg") is None:
            raise PostgresUnavailable("psycopg is not installed (pip install -e '.[postgres]')")
        server = PostgresServer()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL: {exc}")
        pytest.skip(str(exc))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """The SQLAlchemy URL of a fresh, empty database on the session's server."""
    return postgres.create_database()


@pytest.fixture(scope="session")
def milvus() -> Iterator[MilvusTestServer]:
    """A real Milvus standalone server on loopback for the session (tests/milvus.py).

    Skips, saying why, when the ``milvus`` wheel is missing or its server cannot start
    here; in CI either fails.
    """
    try:
        server = MilvusTestServer()
        server.start()
    except (MilvusUnavailable, MilvusStartError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs Milvus: {exc}")
        pytest.skip(f"Milvus is not available here: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def milvus_uri(milvus: MilvusTestServer) -> str:
    """The URI of the session's Milvus server (collections are named per test)."""
    return milvus.uri
