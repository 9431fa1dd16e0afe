"""``screener bench notices`` at CI size: the job over padded stored checks finds the real
copies and what the old scan finds, and the API answers while it runs."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from screener.bench.cli import app


def test_bench_notices_runs_end_to_end_at_a_small_size(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "notices",
            "--checks",
            "400",
            "--scan-checks",
            "100",
            "--copies",
            "2",
            "--unrelated",
            "2",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "synthetic" in result.output
    report = json.loads((tmp_path / "notices.json").read_text())
    assert report["checks"] == 400
    small, job = report["small"], report["job"]
    assert small["same_affected"] is True
    assert small["scan_rescored"] == 100 > small["index_rescored"]
    assert job["copies_found"] == job["affected"] == 2
    assert job["unrelated_found"] == 0
    assert job["candidates"] < report["checks"]
    assert report["health_during_job"]["requests"] >= 1
    assert sum(report["index_catch_up"]["sizes"].values()) >= 400


def test_bench_notices_refuses_a_scan_larger_than_the_run(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["notices", "--checks", "100", "--scan-checks", "200", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "--scan-checks" in result.output
    assert not (tmp_path / "notices.json").exists()
