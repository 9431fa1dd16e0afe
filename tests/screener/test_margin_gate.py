"""The margin gate (policy `margin_gate`): evidence past full counts in the log-odds only
in the share the aligned agreement allows, so that a same-family look-alike, past full on
hashes, SSCD and keypoints, no longer outranks copies."""

from __future__ import annotations

import dataclasses

import pytest

from screener.bench import accuracy_fit
from screener.core import fusion
from screener.core import policy as policy_mod
from screener.core.errors import PolicyError
from tests.records import agreement_records

SHIPPED = policy_mod.load()
# The gate alone: the agreement adds and takes nothing (weight 0, no contradiction).
DEFAULT = dataclasses.replace(
    SHIPPED,
    contradiction=None,
    signals={
        **SHIPPED.signals,
        "aligned_agreement": dataclasses.replace(SHIPPED.signals["aligned_agreement"], weight=0.0),
    },
)
UNGATED = dataclasses.replace(DEFAULT, margin_gate=None)

# Measured on the development suite (seed 9): a badge with other initials against the
# registered badge, and a blurred copy of a registered badge.
LOOKALIKE = {"phash_hamming": 4.0, "pdq_hamming": 36.0, "sscd_cosine": 0.92,
             "local_inliers": 50.0}  # fmt: skip
BLURRED = {"phash_hamming": 0.0, "pdq_hamming": 6.0, "sscd_cosine": 0.89,
           "local_inliers": 19.0}  # fmt: skip


def test_the_shipped_policy_gates_the_margin_on_the_aligned_agreement() -> None:
    assert SHIPPED.margin_gate == "aligned_agreement"


def test_a_lookalike_that_does_not_agree_loses_its_margin_and_falls_under_a_copy() -> None:
    lookalike = {**LOOKALIKE, "aligned_agreement": 0.3}
    copy = {**BLURRED, "aligned_agreement": 0.95}
    # Without the gate the look-alike outranks the copy; with it, the copy comes first.
    assert fusion.log_odds(lookalike, UNGATED) > fusion.log_odds(copy, UNGATED)
    assert fusion.log_odds(lookalike, DEFAULT) < fusion.log_odds(copy, DEFAULT)
    # What it loses is the margin only: the fused probability is the same.
    assert fusion.fuse(lookalike, DEFAULT) == fusion.fuse(lookalike, UNGATED)
    base = fusion.log_odds(lookalike, dataclasses.replace(DEFAULT, margin_cap=1.0))
    assert fusion.log_odds(lookalike, DEFAULT) == pytest.approx(base)


def test_full_agreement_or_none_measured_keeps_the_whole_margin() -> None:
    whole = fusion.log_odds(LOOKALIKE, UNGATED)
    assert fusion.log_odds(LOOKALIKE, DEFAULT) == pytest.approx(whole)  # not measured
    assert fusion.log_odds({**LOOKALIKE, "aligned_agreement": 0.9}, DEFAULT) == pytest.approx(whole)


def test_more_agreement_never_lowers_the_log_odds() -> None:
    ladder = [
        fusion.log_odds({**LOOKALIKE, "aligned_agreement": a}, DEFAULT)
        for a in (0.0, 0.3, 0.45, 0.6, 0.75, 0.85, 1.0)
    ]
    assert ladder == sorted(ladder)
    assert ladder[0] < ladder[-1]


def test_the_margin_is_what_counting_past_full_adds() -> None:
    assert fusion.margin(LOOKALIKE, DEFAULT) > 0
    assert fusion.margin({"sscd_cosine": 0.5}, DEFAULT) == 0.0  # nothing past full
    assert fusion.margin(LOOKALIKE, dataclasses.replace(DEFAULT, margin_cap=1.0)) == 0.0


def test_a_gate_without_a_calibration_is_refused() -> None:
    document = DEFAULT.to_dict()
    del document["signals"]["aligned_agreement"]
    with pytest.raises(PolicyError, match="margin_gate"):
        policy_mod.parse(document)
    document["margin_gate"] = None
    document["contradiction"] = None  # it reads the same evidence
    assert policy_mod.parse(document).margin_gate is None


def test_the_gate_round_trips_through_yaml() -> None:
    again = policy_mod.loads(policy_mod.dumps(DEFAULT))
    assert again.margin_gate == DEFAULT.margin_gate
    assert again.signals["aligned_agreement"] == DEFAULT.signals["aligned_agreement"]


def test_a_fit_keeps_the_templates_gate_and_gives_it_no_weight() -> None:
    # The agreement separates these copies perfectly: a fit that weighed it would.
    records = agreement_records(3, lambda _, rng: float(rng.uniform(0.0, 0.4)))
    start = dataclasses.replace(DEFAULT, block_evidence=None, contradiction=None)
    fitted = accuracy_fit.fit_ramps(records, start, 0.001, 0.01)
    assert fitted.signals["sscd_cosine"].weight > 0
    assert fitted.margin_gate == "aligned_agreement"
    assert fitted.signals["aligned_agreement"] == DEFAULT.signals["aligned_agreement"]
