"""A review rests on evidence in all (policy review_min_log_odds): the probability saturates,
so only the log-odds can hold the review rate at a measured share of unrelated images."""

from __future__ import annotations

import dataclasses

import pytest

from screener.core import fusion
from screener.core import policy as policy_mod
from screener.core.errors import PolicyError
from screener.core.policy import Decision

DEFAULT = policy_mod.load()
FLOORED = dataclasses.replace(DEFAULT, review_min_log_odds=20.0)
UNFLOORED = dataclasses.replace(DEFAULT, review_min_log_odds=None)
# One signal at full evidence (a same-theme icon that SSCD finds close): the review band,
# log-odds well under 20.
ONE_SIGNAL = {"sscd_cosine": 0.8}
# Many inliers alone: the block band, without evidence a block may rest on.
INLIERS_ALONE = {"local_inliers": 24.0}


def decided(values: dict[str, float], policy: policy_mod.Policy) -> Decision:
    return fusion.decision(fusion.fuse(values, policy), values, policy, policy.bands)


def test_below_the_floor_a_case_in_the_review_band_is_allowed() -> None:
    assert fusion.log_odds(ONE_SIGNAL, FLOORED) < 20.0
    assert decided(ONE_SIGNAL, UNFLOORED) is Decision.REVIEW
    assert decided(ONE_SIGNAL, FLOORED) is Decision.ALLOW


def test_a_block_without_its_evidence_is_allowed_below_the_floor() -> None:
    assert fusion.fuse(INLIERS_ALONE, FLOORED) >= FLOORED.bands.block
    assert decided(INLIERS_ALONE, UNFLOORED) is Decision.REVIEW
    assert decided(INLIERS_ALONE, FLOORED) is Decision.ALLOW


def test_at_or_above_the_floor_the_review_stands() -> None:
    values = {"sscd_cosine": 0.8, "phash_hamming": 8.0, "local_inliers": 18.0}
    odds = fusion.log_odds(values, FLOORED)
    at = dataclasses.replace(DEFAULT, review_min_log_odds=odds)
    assert decided(values, UNFLOORED) is Decision.REVIEW
    assert decided(values, at) is Decision.REVIEW
    above = dataclasses.replace(DEFAULT, review_min_log_odds=odds + 0.01)
    assert decided(values, above) is Decision.ALLOW


def test_a_supported_block_is_not_touched_by_the_floor() -> None:
    copy = {"sscd_cosine": 0.95, "pdq_hamming": 20.0, "phash_hamming": 2.0, "local_inliers": 80.0}
    high = dataclasses.replace(DEFAULT, review_min_log_odds=1000.0)
    assert decided(copy, high) is Decision.BLOCK


def test_the_character_route_still_reviews_below_the_floor() -> None:
    route = policy_mod.CharacterReview(evidence="character_margin", threshold=0.1)
    routed = dataclasses.replace(FLOORED, character_review=route)
    values = {"character_margin": 0.3}
    assert decided(values, FLOORED) is Decision.ALLOW
    assert decided(values, routed) is Decision.REVIEW


def test_the_shipped_policy_sets_a_floor_under_its_block_floor() -> None:
    floor = DEFAULT.review_min_log_odds
    assert floor is not None and DEFAULT.block_evidence is not None
    assert DEFAULT.block_evidence.min_log_odds is not None
    assert 0.0 < floor <= DEFAULT.block_evidence.min_log_odds


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "high"])
def test_a_bad_floor_is_refused(bad: object) -> None:
    with pytest.raises(PolicyError, match="review_min_log_odds"):
        policy_mod.parse(DEFAULT.to_dict() | {"review_min_log_odds": bad})


def test_the_floor_round_trips_through_yaml() -> None:
    assert policy_mod.loads(policy_mod.dumps(FLOORED)) == FLOORED


def test_bands_of_the_works_own_are_not_floored() -> None:
    # An operator who set a work's bands (PUT /v1/works/{id}/thresholds) decides its
    # reviews: the floor is the policy's rule for the policy's bands.
    assert decided(ONE_SIGNAL, FLOORED) is Decision.ALLOW
    own = policy_mod.Bands(review=0.5, block=1.0)
    fused = fusion.fuse(ONE_SIGNAL, FLOORED)
    assert fusion.decision(fused, ONE_SIGNAL, FLOORED, own, floored=False) is Decision.REVIEW
    assert fusion.decision(fused, ONE_SIGNAL, FLOORED, own) is Decision.ALLOW
