"""The test PostgreSQL server helper (tests/postgres.py) and its fixtures."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from tests import postgres as pg
from tests.postgres import PostgresServer, PostgresUnavailable


def scalar(url: str, statement: str) -> object:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(statement)).scalar_one()
    finally:
        engine.dispose()


def test_connects_with_sqlalchemy_on_loopback(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    assert scalar(postgres_url, "SELECT 1") == 1
    assert scalar(postgres_url, "SHOW listen_addresses") == "127.0.0.1"
    assert scalar(postgres_url, "SELECT host(inet_server_addr())") == "127.0.0.1"
    assert scalar(postgres_url, "SHOW server_encoding") == "UTF8"


def test_databases_are_fresh_and_independent(postgres: PostgresServer) -> None:
    first, second = postgres.create_database(), postgres.create_database("independent_two")
    assert first != second
    assert second.endswith("/independent_two")
    engine = create_engine(first)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x int)"))
            connection.execute(text("INSERT INTO t VALUES (1), (2)"))
    finally:
        engine.dispose()
    assert scalar(first, "SELECT count(*) FROM t") == 2
    with pytest.raises(ProgrammingError, match="does not exist"):
        scalar(second, "SELECT count(*) FROM t")


@pytest.mark.parametrize("name", ["", "Upper", "1abc", 'x"; DROP', "a" * 64])
def test_create_database_rejects_odd_names(postgres: PostgresServer, name: str) -> None:
    with pytest.raises(ValueError, match="database name"):
        postgres.create_database(name)


def test_stop_removes_everything_and_is_idempotent(postgres: PostgresServer) -> None:
    server = PostgresServer(bin_dir=postgres.bin_dir)
    server.stop()  # never started: nothing to do
    with server:
        base, port = server.base, server.port
        assert port is not None
        assert port != postgres.port
        assert scalar(server.url(), "SELECT 1") == 1
    assert not base.exists()
    assert server.port is None
    with socket.socket() as sock:  # nothing listens there any more
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    server.stop()


def test_missing_binaries_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(pg, "DEBIAN_ROOT", tmp_path / "postgresql")
    with pytest.raises(PostgresUnavailable, match="apt-get install"):
        pg.find_bin_dir()


def test_newest_version_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for version in ("9.6", "15", "13"):
        bin_dir = tmp_path / version / "bin"
        bin_dir.mkdir(parents=True)
        for name in ("initdb", "pg_ctl", "postgres"):
            (bin_dir / name).touch(mode=0o755)
    (tmp_path / "16" / "bin").mkdir(parents=True)  # incomplete: skipped
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(pg, "DEBIAN_ROOT", tmp_path)
    assert pg.find_bin_dir() == tmp_path / "15" / "bin"
