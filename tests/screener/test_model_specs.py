"""Every verdict names the models behind its evidence, the OpenCV release behind
``local_inliers`` included, and a policy fitted under another spec says so at start-up."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from screener import Screener, Settings
from screener.core import policy as policy_mod
from screener.core.errors import PolicyError
from screener.core.samples import drawing
from tests import needs
from tests.images import png

cv2 = needs.module("cv2", "local")

# Hashes only: SSCD's start-up cost buys nothing here.
SIGNALS = ["phash", "pdq"]
OTHER_OPENCV = "sift/opencv-4.9.0/n600/c0.005/e20"
DRIFT = "was fitted with"


def settings(tmp_path: Path, *, local_features: bool = True) -> Settings:
    return Settings(data_dir=tmp_path / "data", signals=SIGNALS, local_features=local_features)


def fitted_with(specs: dict[str, str]) -> policy_mod.Policy:
    return dataclasses.replace(policy_mod.load(), fitted_with=specs)


def drift_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and DRIFT in r.getMessage()
    ]


def test_a_verdict_names_the_opencv_release_behind_local_inliers(tmp_path: Path) -> None:
    with Screener(settings(tmp_path)) as screener:
        verdict = screener.check(png(drawing(3)))
    spec = verdict.models["local_inliers"]
    assert spec.startswith(f"sift/opencv-{cv2.__version__}/"), spec
    assert set(verdict.models) == {*SIGNALS, "local_inliers"}


def test_without_local_features_no_local_spec_is_claimed(tmp_path: Path) -> None:
    with Screener(settings(tmp_path, local_features=False)) as screener:
        verdict = screener.check(png(drawing(3)))
    assert "local_inliers" not in verdict.models


def test_a_policy_fitted_with_another_opencv_warns_at_start_naming_both(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(policy_mod.dumps(fitted_with({"local_inliers": OTHER_OPENCV})))
    with caplog.at_level(logging.WARNING, logger="screener"):
        screener = Screener.open(tmp_path / "data", signals=SIGNALS, policy_path=policy_file)
    with screener:
        running = screener.model_specs["local_inliers"]
    [message] = drift_messages(caplog)
    assert "local_inliers" in message
    assert repr(OTHER_OPENCV) in message
    assert repr(running) in message
    assert "constraints.txt" in message


def test_a_policy_fitted_with_the_running_models_is_quiet(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Screener(settings(tmp_path)) as probe:
        running = probe.model_specs
    # A model that does not run here (sscd, off in these settings) is not drift.
    policy = fitted_with({**running, "sscd": "sscd/another-model/s288"})
    caplog.clear()  # the probe ran the shipped policy, which may warn here
    with (
        caplog.at_level(logging.WARNING, logger="screener"),
        Screener(settings(tmp_path), policy=policy),
    ):
        pass
    assert drift_messages(caplog) == []


def test_putting_a_policy_in_force_warns_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Screener(settings(tmp_path), policy=fitted_with({})) as screener:
        with caplog.at_level(logging.WARNING, logger="screener"):
            screener.policy = fitted_with({"pdq": "pdq/pdqhash-0.0.1"})
        assert screener.policy.fitted_with == {"pdq": "pdq/pdqhash-0.0.1"}
    [message] = drift_messages(caplog)
    assert "'pdq/pdqhash-0.0.1'" in message


def test_fitted_with_survives_yaml_and_refuses_blank_entries() -> None:
    policy = fitted_with({"local_inliers": OTHER_OPENCV})
    assert policy_mod.loads(policy_mod.dumps(policy)).fitted_with == {"local_inliers": OTHER_OPENCV}
    with pytest.raises(PolicyError, match="fitted_with"):
        policy_mod.parse({**policy.to_dict(), "fitted_with": {"local_inliers": " "}})


def test_the_shipped_policy_names_what_it_was_fitted_with() -> None:
    fitted = policy_mod.load().fitted_with
    assert set(fitted) == {"phash", "pdq", "sscd", "local_inliers"}
    assert fitted["local_inliers"].startswith("sift/opencv-")
