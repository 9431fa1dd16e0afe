"""The log-odds beside the capped probability: they keep ordering the strongest cases."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from screener.core import fusion
from screener.core import policy as policy_mod
from screener.core.errors import PolicyError
from screener.core.policy import Policy

DEFAULT = policy_mod.load()
WIDE = dataclasses.replace(DEFAULT, margin_cap=4.0)


def _copy(sscd: float, pdq: float, inliers: float) -> dict[str, float | None]:
    return {"sscd_cosine": sscd, "pdq_hamming": pdq, "local_inliers": inliers}


def test_two_copies_at_the_probability_cap_are_still_ordered() -> None:
    near = _copy(0.80, 60.0, 25.0)  # just past every ramp's full evidence
    exact = _copy(0.99, 4.0, 200.0)  # far past them
    assert fusion.fuse(near, WIDE) == fusion.fuse(exact, WIDE) == fusion.TOP_SCORE
    assert fusion.log_odds(exact, WIDE) > fusion.log_odds(near, WIDE)


def test_with_margin_cap_1_the_log_odds_are_the_fused_logit() -> None:
    values = _copy(0.6, 80.0, 14.0)  # inside every ramp: nothing capped
    logit = fusion.log_odds(values, DEFAULT)
    assert policy_mod.sigmoid(logit) == pytest.approx(fusion.fuse(values, DEFAULT))


@given(st.floats(-1.0, 1.0), st.floats(0.0, 256.0), st.floats(0.0, 500.0), st.floats(0.0, 0.5))
def test_more_similarity_never_lowers_the_log_odds(
    sscd: float, pdq: float, inliers: float, step: float
) -> None:
    base = fusion.log_odds(_copy(sscd, pdq, inliers), WIDE)
    assert fusion.log_odds(_copy(min(1.0, sscd + step), pdq, inliers), WIDE) >= base
    assert fusion.log_odds(_copy(sscd, max(0.0, pdq - 100 * step), inliers), WIDE) >= base
    assert fusion.log_odds(_copy(sscd, pdq, inliers + 100 * step), WIDE) >= base


def test_one_signal_counts_at_most_margin_cap_widths() -> None:
    far = fusion.log_odds({"local_inliers": 10_000.0}, WIDE)
    capped = fusion.log_odds({"local_inliers": 12.0 + 4 * 8.0}, WIDE)  # lo + 4 widths
    assert far == capped


def test_a_margin_cap_below_one_is_refused() -> None:
    document = DEFAULT.to_dict() | {"margin_cap": 0.5}
    with pytest.raises(PolicyError, match="margin_cap"):
        policy_mod.parse(document)


def test_margin_cap_round_trips_through_yaml() -> None:
    assert policy_mod.loads(policy_mod.dumps(WIDE)) == WIDE
    assert isinstance(WIDE, Policy)


def test_a_stored_verdict_reads_back_its_log_odds() -> None:
    from screener.core.replay import verdict_from_dict
    from screener.core.verdict import Match, Verdict

    match = Match("w", "t", "o", 0.999999, "block", {}, {}, {}, {}, log_odds=31.5)
    verdict = Verdict(
        "block", 0.999999, "w", (match,), (), {}, "p", "i", {}, (), {}, {}, None, log_odds=31.5
    )
    again = verdict_from_dict(verdict.to_dict())
    assert again.log_odds == 31.5
    assert again.matches[0].log_odds == 31.5
