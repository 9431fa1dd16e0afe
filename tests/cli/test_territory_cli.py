"""`screener works territories` and `screener check --territory`, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from screener.core import samples
from tests.cli.runner import run_cli

pytestmark = pytest.mark.slow


run = run_cli


def checked(data_dir: Path, image: Path, *territory: str) -> dict[str, object]:
    done = run(data_dir, "check", "--json", *territory, str(image))
    assert done.returncode == 0, done.stderr
    row: dict[str, object] = json.loads(done.stdout.splitlines()[0])
    return row


def test_a_work_protected_in_cn_holds_a_copy_released_there_only(tmp_path: Path) -> None:
    image = tmp_path / "work.png"
    samples.scene(11).save(image)
    assert run(tmp_path, "works", "add", "cn-work", str(image)).returncode == 0
    limited = run(tmp_path, "works", "territories", "cn-work", "cn")
    assert limited.returncode == 0, limited.stderr
    assert "protected in CN" in limited.stdout

    for_cn = checked(tmp_path, image, "--territory", "CN")
    assert for_cn["decision"] == "block" and for_cn["top_work_id"] == "cn-work"
    for_us = checked(tmp_path, image, "--territory", "US")
    verdict = for_us["verdict"]
    assert isinstance(verdict, dict)
    assert for_us["decision"] == "allow"
    assert [m["work_id"] for m in verdict["outside_territory"]] == ["cn-work"]
    anywhere = checked(tmp_path, image)  # no territory: released everywhere, CN included
    assert anywhere["decision"] == "block"

    assert run(tmp_path, "works", "territories", "cn-work").returncode == 0  # everywhere again
    assert checked(tmp_path, image, "--territory", "US")["decision"] == "block"


def test_a_bad_territory_code_is_a_clear_error(tmp_path: Path) -> None:
    image = tmp_path / "work.png"
    samples.scene(12).save(image)
    assert run(tmp_path, "works", "add", "w", str(image)).returncode == 0
    bad_check = run(tmp_path, "check", "--territory", "XX", str(image))
    assert bad_check.returncode == 2
    assert "ISO 3166-1 alpha-2" in bad_check.stderr
    bad_work = run(tmp_path, "works", "territories", "w", "China")
    assert bad_work.returncode == 2
    assert "ISO 3166-1 alpha-2" in bad_work.stderr
    missing = run(tmp_path, "works", "territories", "no-such-work", "CN")
    assert missing.returncode != 0
    assert "no-such-work" in missing.stderr
