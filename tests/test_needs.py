"""A missing part skips its tests with the command that installs it, and fails them in CI.

Each case runs pytest in a child process on a small test that asks for the part, on a
machine where the part is taken away (a PATH without chromium, no PostgreSQL binaries), so
that what is checked is pytest's own outcome: skipped or failed, and the message.
``.ci/test`` is run the same way, as a user who cannot install Debian packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests import needs

REPO = Path(__file__).resolve().parents[1]

CHROMIUM_TEST = """
from tests import needs

def test_browser():
    needs.chromium()
"""

POSTGRES_TEST = """
from pathlib import Path

import tests.postgres as pg
from tests import needs

def test_database(tmp_path):
    pg.DEBIAN_ROOT = tmp_path / "no-postgresql"
    needs.postgres_server()
"""


def run_pytest(tmp_path: Path, source: str, *, ci: str | None) -> subprocess.CompletedProcess[str]:
    """pytest on ``source`` alone, with a PATH that holds nothing (no chromium, no initdb)."""
    (tmp_path / "test_part.py").write_text(source)
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env.update(PATH=str(tmp_path / "empty-path"), PYTHONPATH=str(REPO))
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", "test_part.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_missing_chromium_fails_in_ci_with_the_install_command(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, CHROMIUM_TEST, ci="true")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed" in done.stdout
    assert "CI cannot skip this" in done.stdout
    assert needs.apt_command("chromium") in done.stdout


def test_missing_chromium_skips_outside_ci_with_the_install_command(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, CHROMIUM_TEST, ci=None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout
    assert needs.apt_command("chromium") in done.stdout


def test_ci_false_is_not_ci(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, CHROMIUM_TEST, ci="false")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout


def test_missing_postgresql_fails_in_ci_with_the_install_command(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, POSTGRES_TEST, ci="true")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed" in done.stdout
    assert needs.apt_command("postgresql") in done.stdout


def test_missing_postgresql_skips_outside_ci_with_the_install_command(tmp_path: Path) -> None:
    done = run_pytest(tmp_path, POSTGRES_TEST, ci=None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout
    assert needs.apt_command("postgresql") in done.stdout


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runuser") is None,
    reason="runs .ci/test as the unprivileged 'nobody' user, which needs root and runuser",
)
def test_ci_test_without_chromium_stops_with_the_command_for_a_user() -> None:
    """A user who cannot install packages gets the exact command, and pytest never runs."""
    # A copy of the script in a folder 'nobody' may read (pytest's tmp_path is root's only).
    with tempfile.TemporaryDirectory(prefix="screener-ci-test-") as scratch:
        root = Path(scratch)
        root.chmod(0o755)
        (root / ".ci").mkdir(mode=0o755)
        shutil.copy2(REPO / ".ci" / "test", root / ".ci" / "test")
        tools = root / "bin"  # what the script runs, and no chromium
        tools.mkdir(mode=0o755)
        for name in ("bash", "dirname", "id"):
            found = shutil.which(name)
            assert found is not None, name
            (tools / name).symlink_to(found)
        runuser = shutil.which("runuser")
        assert runuser is not None
        done = subprocess.run(
            [runuser, "-u", "nobody", "--", str(tools / "bash"), str(root / ".ci" / "test")],
            env={"PATH": str(tools), "HOME": str(root)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "sudo apt-get update && sudo apt-get install -y -q --no-install-recommends chromium"
        in done.stderr
    )
    assert "No .venv" not in done.stderr  # it stopped at the missing package
