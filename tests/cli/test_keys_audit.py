"""`screener keys` and `screener audit`, run as a user runs them, on SQLite and a real
PostgreSQL; tampering with the stored log is caught."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from screener.core import samples

pytestmark = pytest.mark.slow


def run(data_dir: Path, url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCREENER_DATA_DIR": str(data_dir), "SCREENER_SIGNALS": "phash,pdq"}
    if url:
        env["SCREENER_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "screener", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str | None, str]:
    """(data dir, database URL for the CLI or None for the default, URL to tamper through)."""
    if request.param == "sqlite":
        return tmp_path, None, f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    url = str(request.getfixturevalue("postgres_url"))
    return tmp_path, url, url


def populate(data_dir: Path, url: str | None) -> str:
    """Keys made, a work registered and removed through the CLI: returns a key id."""
    made = run(data_dir, url, "keys", "create", "--role", "platform", "--owner", "genco")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("sk_k_") and len(made.stdout.splitlines()) == 1
    key_id = "_".join(secret.split("_")[1:3])
    image = data_dir / "w.png"
    samples.scene(3).save(image)
    assert run(data_dir, url, "works", "add", "w1", str(image)).returncode == 0
    assert run(data_dir, url, "works", "remove", "w1").returncode == 0
    assert run(data_dir, url, "keys", "revoke", key_id).returncode == 0
    return key_id


def test_keys_are_printed_once_listed_without_secrets_and_revoked(
    database: tuple[Path, str | None, str],
) -> None:
    data_dir, url, _ = database
    key_id = populate(data_dir, url)
    listed = run(data_dir, url, "keys", "list")
    assert listed.returncode == 0
    assert key_id in listed.stdout and "genco" in listed.stdout
    assert "sk_" not in listed.stdout
    bad = run(data_dir, url, "keys", "create", "--role", "emperor", "--owner", "x")
    assert bad.returncode == 2
    assert "emperor" in bad.stderr
    assert run(data_dir, url, "keys", "revoke", "k_nothere0").returncode == 2


def test_audit_verify_passes_then_catches_an_edited_row(
    database: tuple[Path, str | None, str],
) -> None:
    data_dir, url, tamper_url = database
    populate(data_dir, url)
    good = run(data_dir, url, "audit", "verify")
    assert good.returncode == 0, good.stderr
    assert "intact: 4 records" in good.stdout
    tail = run(data_dir, url, "audit", "tail")
    actions = [line.split('"action": "')[1].split('"')[0] for line in tail.stdout.splitlines()]
    assert actions == ["key.create", "work.register", "work.delete", "key.revoke"]

    engine = create_engine(tamper_url)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_log SET payload = :p WHERE seq = 2"), {"p": '{"forged": true}'}
        )
    engine.dispose()
    broken = run(data_dir, url, "audit", "verify")
    assert broken.returncode == 1
    assert "broken at record 2" in broken.stderr


def test_audit_verify_catches_a_deleted_row(database: tuple[Path, str | None, str]) -> None:
    data_dir, url, tamper_url = database
    populate(data_dir, url)
    head = run(data_dir, url, "audit", "head").stdout.strip()
    engine = create_engine(tamper_url)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE seq = 3"))
    engine.dispose()
    broken = run(data_dir, url, "audit", "verify")
    assert broken.returncode == 1
    assert "broken at record 3" in broken.stderr
    anchored = run(data_dir, url, "audit", "verify", "--anchor", head)
    assert anchored.returncode == 1
    assert run(data_dir, url, "audit", "verify", "--anchor", "nonsense").returncode == 2
