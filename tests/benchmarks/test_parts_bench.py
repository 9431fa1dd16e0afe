"""The part-verification benchmark's arithmetic: thresholds above the negatives, recall
per category, look-alikes reaching, and parameter variants parsed or refused."""

from __future__ import annotations

import pytest

from screener.bench import parts
from screener.models.keypoints import PartParams


def _row(category: str, truth: str | None, value: float) -> dict[str, object]:
    return {"query": "q", "category": category, "truth": truth, "values": {"part_inliers": value}}


def test_thresholds_sit_above_the_negatives_and_recall_counts_what_reaches_them() -> None:
    rows = [
        _row("lookalike", None, 30),
        _row("photo", None, 5),
        _row("new_pose", "w", 31),
        _row("new_pose", "w", 29),
        _row("light_copy", "w", 90),
    ]
    report = parts.report(rows, [2.0, 4.0])
    at = report["signals"]["part_inliers"]["0.01"]
    assert at["threshold"] == 30.5
    assert at["recall"]["new_pose"] == 0.5 and at["recall"]["light_copy"] == 1.0
    assert at["lookalikes_reaching"] == 0
    assert report["signals"]["part_inliers"]["lookalike_max"] == 30
    assert report["added_ms_per_check"]["p50"] == 3.0


def test_variants_are_parsed_and_unknown_parameters_refused() -> None:
    name, params = parts._variant("strict=min_inliers=8,min_motion=0.08")
    assert name == "strict" and params == PartParams(min_inliers=8, min_motion=0.08)
    with pytest.raises(SystemExit, match="unknown part parameter"):
        parts._variant("bad=inliers=3")
