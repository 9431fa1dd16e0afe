"""The character route (policy ``character_review``): a character score past its threshold
sends a check to review, never to block; the bands still decide every block."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest

from screener.core import fusion
from screener.core import policy as policy_mod
from screener.core.errors import PolicyError
from screener.core.policy import CharacterReview, Decision

DEFAULT = policy_mod.load()
ROUTED = dataclasses.replace(DEFAULT, character_review=CharacterReview("character_margin", 0.05))
UNROUTED = dataclasses.replace(DEFAULT, character_review=None)


def _decide(values: Mapping[str, float | None], policy: policy_mod.Policy) -> Decision:
    return fusion.decision(fusion.fuse(values, policy), values, policy, policy.bands)


def test_a_character_margin_past_the_threshold_is_reviewed() -> None:
    drawn_anew = {"sscd_cosine": 0.1, "character_margin": 0.08}
    assert _decide(drawn_anew, UNROUTED) is Decision.ALLOW
    assert _decide(drawn_anew, ROUTED) is Decision.REVIEW


def test_below_the_threshold_or_without_the_evidence_the_bands_decide() -> None:
    assert _decide({"sscd_cosine": 0.1, "character_margin": 0.049}, ROUTED) is Decision.ALLOW
    assert _decide({"sscd_cosine": 0.1, "character_margin": None}, ROUTED) is Decision.ALLOW
    assert _decide({"sscd_cosine": 0.1}, ROUTED) is Decision.ALLOW


def test_the_route_never_blocks_and_never_lowers_a_block() -> None:
    """However strong the character evidence, it reviews; a copy still blocks."""
    assert _decide({"character_margin": 1e6}, ROUTED) is Decision.REVIEW
    copy = {"sscd_cosine": 0.99, "pdq_hamming": 10.0, "phash_hamming": 2.0, "character_margin": 1e6}
    assert _decide(copy, ROUTED) is Decision.BLOCK


def test_the_route_names_image_evidence_and_a_finite_threshold() -> None:
    document = DEFAULT.to_dict()
    with pytest.raises(PolicyError, match=r"character_review\.evidence"):
        policy_mod.parse(document | {"character_review": {"evidence": "nope", "threshold": 0.1}})
    with pytest.raises(PolicyError, match=r"character_review\.threshold"):
        policy_mod.parse(
            document | {"character_review": {"evidence": "character_margin", "threshold": "nan"}}
        )


def test_the_route_survives_a_round_trip_through_yaml() -> None:
    assert policy_mod.loads(policy_mod.dumps(ROUTED)) == ROUTED
