"""`screener works add --related` and `screener prompt`, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from screener.core import samples
from tests.cli.runner import run_cli

pytestmark = pytest.mark.slow


def run(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(data_dir, *args, stdin=stdin)


def test_prompts_from_stdin_and_arguments(tmp_path: Path) -> None:
    image = tmp_path / "hero.png"
    samples.scene(3).save(image)
    added = run(
        tmp_path,
        "works",
        "add",
        "hero",
        str(image),
        "--title",
        "Ultraman",
        "--alias",
        "奥特曼",
        "--alias",
        "ウルトラマン",
        "--related",
        "光之巨人",
        "--related",
        "M78星云",
        "--related",
        "color timer",
    )
    assert added.returncode == 0, added.stderr
    listed = json.loads(run(tmp_path, "works", "list", "--json").stdout)
    assert listed["related_terms"] == ["光之巨人", "M78星云", "color timer"]

    lines = (
        "U l t r a m a n\n\naoteman in a city\na color timer on the kitchen wall\n"
        "光之巨人 from M78星云\n"
    )
    checked = run(tmp_path, "prompt", "--json", stdin=lines)
    assert checked.returncode == 0, checked.stderr
    results = [json.loads(line) for line in checked.stdout.splitlines()]
    assert [r["prompt"] for r in results] == [
        "U l t r a m a n",
        "aoteman in a city",
        "a color timer on the kitchen wall",
        "光之巨人 from M78星云",
    ]
    assert [r["decision"] for r in results] == ["refuse", "refuse", "allow", "warn"]
    assert results[0]["matches"][0]["work_id"] == "hero"
    assert results[0]["matches"][0]["terms"] == [
        {"term": "Ultraman", "matched_as": "U l t r a m a n", "how": "separator"}
    ]
    assert results[1]["matches"][0]["terms"][0]["how"] == "romanised"
    assert results[2]["matches"] == [] and results[2]["risk_prompt"] is None
    assert {t["how"] for t in results[3]["matches"][0]["terms"]} == {"related"}
    assert "Ultraman" in results[0]["risk_prompt"]["zh"]

    given = run(tmp_path, "prompt", "--json", "ultramarine sky", "奧特曼")
    assert given.returncode == 0, given.stderr
    decisions = [json.loads(line)["decision"] for line in given.stdout.splitlines()]
    assert decisions == ["allow", "refuse"]

    table = run(tmp_path, "prompt", "U1tr4m4n")
    assert table.returncode == 0 and "refuse" in table.stdout and "homoglyph" in table.stdout
    too_long = run(tmp_path, "prompt", "--json", "x" * 2001)
    assert too_long.returncode == 1
    assert "longer than 2000" in json.loads(too_long.stdout)["error"]
