"""The scale benchmark at a tiny size: it registers for real, and its report holds what it
claims at every checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from screener.bench import scale


def test_checkpoints_grow_tenfold_with_a_step_between_and_end_at_the_total() -> None:
    assert scale.checkpoints(10_000, 100) == [100, 300, 1000, 3000, 10_000]
    assert scale.checkpoints(50, 100) == [50]
    assert scale.checkpoints(250, 20) == [20, 60, 200, 250]


@pytest.mark.slow
def test_scale_reports_rate_memory_startup_and_checks(tmp_path: Path) -> None:
    report = scale.run(
        works=6,
        first=3,
        batch=2,
        checks=2,
        seed=1,
        out=tmp_path,
        overrides={"signals": ["phash", "pdq"]},
    )
    saved = json.loads((tmp_path / "scale.json").read_text())
    assert saved["points"] == json.loads(json.dumps(report["points"]))
    assert [p["works"] for p in saved["points"]] == [3, 6]
    for point in saved["points"]:
        # every work went through the real path: in the catalog a fresh process opens
        assert point["startup"]["works"] == point["works"]
        assert point["catalog_log_position"] > 0
        assert point["registration_per_s"] > 0 and point["registration_cpu_s_per_work"] > 0
        assert point["files"]["catalog"] > 0 and point["files"]["indexes"] > 0
        assert point["descriptor_index_entries"] > 0
        assert 0 < point["p50_ms"] <= point["p99_ms"]
        assert point["startup"]["startup_s"] > 0
    assert saved["vs_first"]["check_p50_ratio"] > 0
    with Image.open(tmp_path / "scale.png") as plot:
        assert plot.width > 400
