"""The policy's contradiction (`policy.Contradiction`): where the query was lined up with a
work and compared cell by cell, what that agreement lacks of full is taken from the fused
logit, so that a same-family look-alike (the same badge with other initials), at full
evidence on hashes, SSCD and keypoints, falls under copies and out of the block band."""

from __future__ import annotations

import dataclasses
import math

import pytest

from screener.bench import accuracy_fit
from screener.core import fusion
from screener.core import policy as policy_mod
from screener.core.errors import PolicyError
from screener.core.policy import Contradiction, Decision
from tests.records import agreement_records

DEFAULT = policy_mod.load()
NONE = dataclasses.replace(DEFAULT, contradiction=None)
WEIGHT = 25.0
AGAINST = dataclasses.replace(DEFAULT, contradiction=Contradiction("aligned_agreement", WEIGHT))

# A badge with other initials against the registered badge, as the real check measured
# one on the development suite (seed 12: SSCD 0.82, agreement 0.30), with 20 inliers: in
# the block band and past the block evidence's log-odds floor by less than ``WEIGHT``.
LOOKALIKE = {"sscd_cosine": 0.824, "sscd_region_cosine": 0.78, "local_inliers": 20.0,
             "pdq_hamming": 70.0, "phash_hamming": 12.0}  # fmt: skip


def test_nothing_is_taken_where_the_agreement_was_not_measured() -> None:
    assert fusion.contradiction(LOOKALIKE, AGAINST) == 0.0
    assert fusion.fuse(LOOKALIKE, AGAINST) == fusion.fuse(LOOKALIKE, NONE)
    assert fusion.log_odds(LOOKALIKE, AGAINST) == pytest.approx(fusion.log_odds(LOOKALIKE, NONE))
    nan = {**LOOKALIKE, "aligned_agreement": math.nan}
    assert fusion.contradiction(nan, AGAINST) == 0.0


def test_a_lookalike_that_does_not_agree_loses_the_weight() -> None:
    measured = {**LOOKALIKE, "aligned_agreement": 0.296}  # under the ramp's lo: no evidence
    assert fusion.contradiction(measured, AGAINST) == pytest.approx(WEIGHT)
    # The fused logit and the log-odds both lose it; the shares say where it went.
    plain = fusion.log_odds(measured, NONE)
    assert fusion.log_odds(measured, AGAINST) == pytest.approx(plain - WEIGHT)
    assert fusion.fuse(measured, AGAINST) < fusion.fuse(measured, NONE)
    shares = fusion.contributions(measured, AGAINST)
    assert shares["aligned_agreement"] == pytest.approx(-WEIGHT)
    assert fusion.contributions(measured, NONE)["aligned_agreement"] == 0.0


def test_a_copy_that_agrees_loses_nothing_and_partial_agreement_loses_its_share() -> None:
    calibration = DEFAULT.signals["aligned_agreement"]
    assert fusion.contradiction({**LOOKALIKE, "aligned_agreement": calibration.hi}, AGAINST) == 0.0
    middle = (calibration.lo + calibration.hi) / 2
    half = fusion.contradiction({**LOOKALIKE, "aligned_agreement": middle}, AGAINST)
    assert half == pytest.approx(WEIGHT / 2)


def test_more_agreement_never_lowers_the_score() -> None:
    ladder = [
        fusion.log_odds({**LOOKALIKE, "aligned_agreement": a}, AGAINST)
        for a in (-1.0, 0.0, 0.3, 0.45, 0.6, 0.75, 0.85, 1.0)
    ]
    assert ladder == sorted(ladder)
    assert ladder[-1] - ladder[0] >= WEIGHT - 1e-9


def test_a_lookalike_in_the_block_band_is_no_longer_blocked() -> None:
    # Under the block floor this case was measured against (30; the shipped one is
    # higher, and already reviews it without the contradiction).
    rule = DEFAULT.block_evidence
    assert rule is not None
    floored = dataclasses.replace(rule, min_log_odds=30.0)
    none = dataclasses.replace(NONE, block_evidence=floored)
    against = dataclasses.replace(AGAINST, block_evidence=floored)
    measured = {**LOOKALIKE, "aligned_agreement": 0.296}
    bands = DEFAULT.bands
    before = fusion.decision(fusion.fuse(measured, none), measured, none, bands)
    after = fusion.decision(fusion.fuse(measured, against), measured, against, bands)
    assert before is Decision.BLOCK
    assert after is not Decision.BLOCK


def test_the_rule_is_validated() -> None:
    with pytest.raises(ValueError, match="weight"):
        Contradiction("aligned_agreement", -1.0)
    with pytest.raises(ValueError, match="weight"):
        Contradiction("aligned_agreement", math.inf)
    document = AGAINST.to_dict()
    del document["signals"]["aligned_agreement"]
    document["margin_gate"] = None
    with pytest.raises(PolicyError, match="contradiction"):
        policy_mod.parse(document)


def test_the_rule_round_trips_through_yaml() -> None:
    again = policy_mod.loads(policy_mod.dumps(AGAINST))
    assert again.contradiction == AGAINST.contradiction
    assert policy_mod.loads(policy_mod.dumps(NONE)).contradiction is None


def test_a_fit_keeps_the_rule_and_the_calibration_it_reads() -> None:
    records = agreement_records(5, lambda i, _: 0.1 if i % 10 == 0 else None)
    start = dataclasses.replace(AGAINST, block_evidence=None)
    fitted = accuracy_fit.fit_ramps(records, start, 0.001, 0.01)
    assert fitted.contradiction == AGAINST.contradiction
    assert fitted.signals["aligned_agreement"] == DEFAULT.signals["aligned_agreement"]
    assert fitted.signals["sscd_cosine"].weight > 0


def test_the_shipped_agreement_counts_both_ways() -> None:
    """Shipped: the agreement adds its weight at full and the contradiction takes as much
    at none, so that it counts -w at its lo, 0 midway and +w at its hi."""
    calibration = DEFAULT.signals["aligned_agreement"]
    assert DEFAULT.contradiction is not None
    assert DEFAULT.contradiction.evidence == "aligned_agreement"
    assert calibration.weight == DEFAULT.contradiction.weight > 0
    weight = calibration.weight
    # A small composite: SSCD on the placed box short of full, a few inliers.
    pasted = {"sscd_region_cosine": 0.70, "local_inliers": 9.0}
    unmeasured = fusion.contributions(pasted, DEFAULT)["aligned_agreement"]
    assert unmeasured == 0.0
    for value, share in ((calibration.lo, -weight), (calibration.hi, weight)):
        shares = fusion.contributions({**pasted, "aligned_agreement": value}, DEFAULT)
        assert shares["aligned_agreement"] == pytest.approx(share)
    middle = (calibration.lo + calibration.hi) / 2
    assert fusion.contributions({**pasted, "aligned_agreement": middle}, DEFAULT)[
        "aligned_agreement"
    ] == pytest.approx(0.0)
    # Agreeing lifts the composite past where it was without the measurement.
    agreed = {**pasted, "aligned_agreement": 0.95}
    assert fusion.log_odds(agreed, DEFAULT) >= fusion.log_odds(pasted, DEFAULT) + weight
