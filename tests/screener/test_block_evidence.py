"""A block rests on evidence a same-family look-alike cannot reach (policy block_evidence)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from screener.core import fusion
from screener.core import policy as policy_mod
from screener.core.errors import PolicyError
from screener.core.policy import BlockEvidence

# The block rule alone: no review floor (tests/screener/test_review_floor.py has it).
DEFAULT = dataclasses.replace(policy_mod.load(), review_min_log_odds=None)
GUARDED = dataclasses.replace(
    DEFAULT, block_evidence=BlockEvidence(("sscd_cosine", "sscd_region_cosine"), 1.0)
)


def test_many_inliers_alone_do_not_support_a_block() -> None:
    lookalike = {"local_inliers": 28.0, "sscd_cosine": 0.45}
    assert fusion.fuse(lookalike, GUARDED) >= GUARDED.bands.block  # the band alone blocks
    assert not fusion.block_supported(lookalike, GUARDED)


def test_a_global_signal_at_full_evidence_supports_a_block() -> None:
    copy = {"local_inliers": 28.0, "sscd_region_cosine": 0.9}
    assert fusion.block_supported(copy, GUARDED)


def test_the_work_level_moves_what_full_evidence_needs() -> None:
    # A work whose cohort reaches 0.6 needs a closer region match for full evidence.
    values = {"sscd_region_cosine": 0.8, "sscd_region_cosine_cohort": 0.6}
    assert not fusion.block_supported(values, GUARDED)
    assert fusion.block_supported({**values, "sscd_region_cosine": 0.99}, GUARDED)


def test_without_a_rule_every_block_stands() -> None:
    unguarded = dataclasses.replace(DEFAULT, block_evidence=None)
    assert fusion.block_supported({"local_inliers": 28.0}, unguarded)


def test_the_shipped_rule_does_not_rest_a_block_on_keypoints() -> None:
    rule = DEFAULT.block_evidence
    assert rule is not None
    assert "local_inliers" not in rule.signals
    assert {"sscd_cosine", "sscd_region_cosine"} <= set(rule.signals)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"signals": ["prompt_keyword"]}, "image signals"),
        ({"signals": ["sscd_cosine"], "min_evidence": 0.0}, "min_evidence"),
    ],
)
def test_a_bad_rule_is_refused(rule: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        policy_mod.parse(DEFAULT.to_dict() | {"block_evidence": rule})


def test_the_rule_round_trips_through_yaml() -> None:
    assert policy_mod.loads(policy_mod.dumps(GUARDED)) == GUARDED


FLOORED = dataclasses.replace(
    DEFAULT,
    block_evidence=BlockEvidence(("sscd_cosine", "sscd_region_cosine"), 1.0, min_log_odds=30.0),
)


def test_one_global_signal_at_full_evidence_is_below_the_floor() -> None:
    # A badge of the same brand with other initials (measured in the multi-domain suite):
    # SSCD past full, the hashes far.
    lookalike = {
        "sscd_cosine": 0.939,
        "sscd_region_cosine": 0.778,
        "phash_hamming": 16.0,
        "pdq_hamming": 88.0,
        "pdq_region_hamming": 110.0,
    }
    assert fusion.fuse(lookalike, FLOORED) >= FLOORED.bands.block
    assert fusion.block_supported(lookalike, GUARDED)  # without the floor it blocks
    assert fusion.log_odds(lookalike, FLOORED) < 30.0
    assert not fusion.block_supported(lookalike, FLOORED)
    assert fusion.decision(fusion.fuse(lookalike, FLOORED), lookalike, FLOORED, FLOORED.bands) is (
        policy_mod.Decision.REVIEW
    )


def test_a_copy_clears_the_floor() -> None:
    copy = {"sscd_cosine": 0.95, "pdq_hamming": 20.0, "phash_hamming": 2.0, "local_inliers": 80.0}
    assert fusion.log_odds(copy, FLOORED) >= 30.0
    assert fusion.block_supported(copy, FLOORED)
    decided = fusion.decision(fusion.fuse(copy, FLOORED), copy, FLOORED, FLOORED.bands)
    assert decided is policy_mod.Decision.BLOCK


def test_the_shipped_policy_sets_a_floor() -> None:
    rule = DEFAULT.block_evidence
    assert rule is not None and rule.min_log_odds is not None
    block = DEFAULT.bands.block
    assert rule.min_log_odds > math.log(block / (1.0 - block))  # stricter than the band


def test_a_floor_must_be_finite() -> None:
    rule = {"signals": ["sscd_cosine"], "min_log_odds": float("nan")}
    with pytest.raises(PolicyError, match="min_log_odds"):
        policy_mod.parse(DEFAULT.to_dict() | {"block_evidence": rule})


def test_a_floored_rule_round_trips_through_yaml() -> None:
    assert policy_mod.loads(policy_mod.dumps(FLOORED)) == FLOORED
