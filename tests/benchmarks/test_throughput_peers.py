"""The throughput benchmark at a tiny size: it runs, and its report holds what it claims."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from screener.bench import throughput

pytestmark = pytest.mark.slow


def test_throughput_reports_rates_shares_and_targets(tmp_path: Path) -> None:
    report = throughput.run(
        images=4, batch=2, checks_count=4, works=2, pad=500, structure="auto", seed=1, out=tmp_path
    )
    saved = json.loads((tmp_path / "throughput.json").read_text())
    assert saved["config"]["pad_references"] == 500
    for name in ("phash", "pdq", "sscd"):
        entry = saved["fingerprinting"][name]
        assert entry["images_per_s_batch_1"] > 0
        assert entry["images_per_s_batch_2"] > 0
    settings = (
        "regions_on",
        "regions_off",
        "local_off",
        "partial_methods_off",
        "placed_off",
        "sscd_windows_on",
    )
    for setting in (*settings, "fast"):
        shares = saved["checks"][setting]["stage_share"]
        assert set(shares) == {"decode", "fingerprint", "search", "score", "verify", "verdict"}
        # Six shares, each rounded to 4 places: their sum may be off by 6 x 0.00005.
        assert 0.97 <= sum(shares.values()) <= 1.0 + 6 * 0.00005 + 1e-9
        # every index was padded past the registered fingerprints
        assert all(size >= 500 for size in saved["checks"][setting]["index_sizes"].values())
    assert "lookup_at_most_10pct_of_check" in report["targets"]
    cost = report["targets"]["partial_methods_p50_ratio_at_most_1.5"]
    assert cost["measured"] > 0 and cost["pass"] == (cost["measured"] <= 1.5)
    placed = report["targets"]["placed_region_p50_ratio_at_most_1.5"]
    assert placed["measured"] > 0 and placed["pass"] == (placed["measured"] <= 1.5)
    assert saved["checks"]["placed_off"]["settings"]["placed_region"] is False
    windows = report["targets"]["sscd_windows_p50_ratio_at_most_1.5"]
    assert windows["measured"] > 0 and windows["pass"] == (windows["measured"] <= 1.5)
    local = report["targets"]["check_at_most_2x_global_fingerprinting"]
    assert saved["checks"]["local_off"]["stage_share"]["verify"] < 0.01
    assert local["verify_share"] > 0 and local["check_over_fingerprinting"] > 1
    fast = saved["fast_over_default"]
    assert (
        fast["settings"] == saved["checks"]["fast"]["settings"] == throughput.fast_settings("sscd")
    )
    assert fast["p50_speedup"] > 0 and fast["fingerprint_p50_speedup"] > 0
    assert fast["cpu_p50_speedup"] > 0 and saved["checks"]["fast"]["cpu_p50_ms"] > 0
    semantic = saved["checks"]["semantic_on"]
    added = report["targets"]["semantic_added_p50_ms_at_most_30"]
    if "unavailable" in semantic:  # the semantic tower cannot be made here
        assert added["measured"] is None and added["pass"] is False
    else:
        assert semantic["settings"]["signals"][-1] == "semantic"
        assert added["measured"] == round(
            semantic["p50_ms"] - saved["checks"]["regions_on"]["p50_ms"], 2
        )
        assert added["pass"] == (added["measured"] <= 30.0)
        assert set(added["stage_p50_added_ms"]) == set(throughput.STAGES)
    with Image.open(tmp_path / "throughput.png") as plot:
        assert plot.width > 400


def test_peer_protocol_report(peers_dir: Path, tmp_path: Path) -> None:
    from screener.bench import peers

    report = peers.run(peers_dir, tmp_path)
    saved = json.loads((tmp_path / "peers.json").read_text())
    caught, total = map(int, saved["copies_caught"].split("/"))
    assert total == 25
    assert caught == total
    allowed, unrelated = map(int, saved["unrelated_allowed"].split("/"))
    assert allowed == unrelated >= 20
    assert sorted(Path(e).suffix for e in report["errors"]) == [".pbm", ".pgm"]
