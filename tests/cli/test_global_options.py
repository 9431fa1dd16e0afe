"""`--data-dir` where people expect it: before the subcommand (as with `git -C`) as well as
after it. Before the subcommand it beats SCREENER_DATA_DIR; after it, it beats both."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from screener.cli import app
from screener.core import samples
from tests.cli.runner import run_cli


def _work_folder(root: Path, work_id: str, seed: int) -> Path:
    (root / work_id).mkdir(parents=True)
    samples.scene(seed).save(root / work_id / "a.png")
    return root


def _work_ids(data_dir: Path) -> set[str]:
    listed = run_cli(data_dir, "works", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return {work["id"] for work in map(json.loads, listed.stdout.splitlines())}


@pytest.mark.slow
def test_data_dir_before_the_subcommand_and_after_it(tmp_path: Path) -> None:
    from_variable = tmp_path / "from-variable"  # what SCREENER_DATA_DIR names in every run
    before, after = tmp_path / "before", tmp_path / "after"

    hero = _work_folder(tmp_path / "hero-works", "hero", 21)
    made = run_cli(from_variable, "--data-dir", str(before), "works", "import", str(hero))
    assert made.returncode == 0, made.stderr

    villain = _work_folder(tmp_path / "villain-works", "villain", 23)
    made = run_cli(
        from_variable,
        "--data-dir",
        str(before),
        "works",
        "import",
        str(villain),
        "--data-dir",
        str(after),
    )
    assert made.returncode == 0, made.stderr

    assert _work_ids(before) == {"hero"}
    assert _work_ids(after) == {"villain"}
    assert not from_variable.exists()  # nothing was written where the variable points


def test_data_dir_before_the_subcommand_lasts_only_for_that_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCREENER_DATA_DIR", str(tmp_path / "from-variable"))
    given = tmp_path / "given"

    result = CliRunner().invoke(app, ["--data-dir", str(given), "keys", "list"])

    assert result.exit_code == 0, result.output
    assert given.is_dir() and not (tmp_path / "from-variable").exists()
    assert os.environ["SCREENER_DATA_DIR"] == str(tmp_path / "from-variable")
