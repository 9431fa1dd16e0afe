"""The character evidence a match carries: closest references by the semantic signal (one
row per reference, best first), the model's score, and the verified parts."""

from __future__ import annotations

import numpy as np

from screener.core.verdict import RegionPair
from screener.matching.character_evidence import character_evidence
from screener.matching.verification import LocalMatch, PartMatch

QUAD = ((0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0))


def _local(parts: tuple[PartMatch, ...]) -> LocalMatch:
    return LocalMatch(
        "w", 7, "white", 30, 50, 0.5, QUAD, np.zeros((0, 4), np.float32), (100, 100), parts, 7
    )


def test_closest_references_are_one_row_each_best_first() -> None:
    values: dict[str, float | None] = {
        "semantic_cosine": 0.81,
        "semantic_region_cosine": 0.93,
        "character_score": 1.23456,
    }
    regions = {
        "semantic_cosine": RegionPair("whole", 3, "whole"),
        "semantic_region_cosine": RegionPair("grid01", 5, "whole"),
    }
    found = character_evidence(values, regions, None)
    assert found is not None
    assert [(r["reference_id"], r["cosine"], r["evidence"]) for r in found["closest"]] == [
        (5, 0.93, "semantic_region_cosine"),
        (3, 0.81, "semantic_cosine"),
    ]
    assert found["character_score"] == 1.2346 and found["parts"] == []
    # The same reference closest by both: one row, its higher cosine.
    regions["semantic_cosine"] = RegionPair("whole", 5, "whole")
    again = character_evidence(values, regions, None)
    assert again is not None and [r["reference_id"] for r in again["closest"]] == [5]


def test_parts_are_summed_and_nothing_gives_none() -> None:
    parts = (PartMatch(20, QUAD, (0, 0, 5, 5)), PartMatch(9, QUAD, (5, 5, 9, 9)))
    found = character_evidence({}, {}, _local(parts))
    assert found is not None
    assert found["part_inliers"] == 29 and found["part_reference_id"] == 7
    assert [p["inliers"] for p in found["parts"]] == [20, 9]
    assert character_evidence({"sscd_cosine": 0.9}, {}, _local(())) is None
