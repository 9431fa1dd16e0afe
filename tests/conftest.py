"""Fixtures shared by the screener tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from screener import Screener, Settings
from tests import needs
from tests.milvus import MilvusStartError, MilvusTestServer, MilvusUnavailable
from tests.postgres import PostgresServer

REPO_ROOT = Path(__file__).resolve().parents[1]
PEERS_DIR = REPO_ROOT.parent / "shared" / "data" / "peers"


@pytest.fixture(scope="session")
def peers_dir() -> Path:
    """The peer test images (used in place, read-only); skips when they are not there
    (fails in CI)."""
    if not PEERS_DIR.is_dir():
        needs.missing(
            f"the peer test images are not at {PEERS_DIR}: put the shared data folder "
            "beside the checkout (../shared/data/peers)"
        )
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

    Skips, with the command that installs them, when the server binaries or psycopg are
    missing; in CI their absence fails (tests/needs.py).
    """
    server = needs.postgres_server()
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
    except MilvusUnavailable as exc:
        needs.missing(
            f"Milvus is not installed ({exc}); the milvus extra installs it: {needs.PIP_INSTALL}"
        )
    except MilvusStartError as exc:
        needs.missing(f"the Milvus server did not start here: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def milvus_uri(milvus: MilvusTestServer) -> str:
    """The URI of the session's Milvus server (collections are named per test)."""
    return milvus.uri
