"""The HTTP load benchmark at a tiny size: two real `screener serve` processes on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from screener.bench import http_load
from screener.bench.cli import app


@pytest.mark.slow
def test_http_load_reports_both_settings_without_errors(tmp_path: Path) -> None:
    report = http_load.run(
        works=2,
        queries_count=4,
        requests=3,
        duration=60.0,
        concurrency=[2, 1],
        warmup=2,
        seed=1,
        out=tmp_path,
    )
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert saved["benchmark"] == "http"
    assert saved["config"]["concurrency"] == [1, 2]
    assert saved["errors_total"] == 0
    assert saved["setup"]["index_sizes"]
    for name, batching in (("off", False), ("on", True)):
        mode = saved["modes"][name]
        assert mode["readyz"]["batching"] is batching
        assert mode["warmup"]["errors"] == 0
        assert mode["stop"]["signal"] in {"sigterm", "killed"}
        assert mode["baseline_concurrency"] == 1
        assert [e["concurrency"] for e in mode["levels"]] == [1, 2]
        for entry in mode["levels"]:
            assert entry["errors"] == 0
            assert entry["ok"] == entry["sent"] == 3
            assert entry["stopped_by"] == "count"
            assert entry["throughput_rps"] > 0
            assert 0 < entry["p50_ms"] <= entry["p99_ms"]
            assert len(entry["loadavg_before"]) == len(entry["loadavg_after"]) == 3
            assert entry["model_calls"] >= 1
        assert mode["levels"][0]["throughput_vs_baseline"] == 1.0
    assert saved["modes"]["off"]["levels"][1]["mean_batch_images"] == 1.0
    assert [c["concurrency"] for c in saved["batching_on_vs_off"]] == [1, 2]
    assert all(c["throughput_on_over_off"] > 0 for c in saved["batching_on_vs_off"])
    assert saved["decisions"]["queries_decided_differently"] == []
    with Image.open(tmp_path / "http_load.png") as plot:
        assert plot.width > 400


@pytest.mark.parametrize("host", ["10.0.0.1", "0.0.0.0", "example.com", "192.168.1.2"])
def test_refuses_hosts_other_than_loopback(host: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="refusing host"):
        http_load.run(host=host, out=tmp_path)
    assert not (tmp_path / "results.json").exists()


def test_loopback_hosts_are_accepted() -> None:
    assert http_load.check_loopback("127.0.0.1") == "127.0.0.1"
    assert http_load.check_loopback("[::1]") == "::1"
    assert http_load.check_loopback("localhost") == "localhost"


def test_bench_http_command_is_registered_and_refuses_remote_hosts(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["http", "--help"]).exit_code == 0
    refused = runner.invoke(app, ["http", "--host", "10.1.2.3", "--out", str(tmp_path)])
    assert refused.exit_code == 2
    assert "refusing host" in refused.output
