"""A block rests on evidence a same-family look-alike cannot reach (policy block_evidence)."""

from __future__ import annotations

import dataclasses

import pytest

from screener.core import fusion
from screener.core import policy as policy_mod
from screener.core.errors import PolicyError
from screener.core.policy import BlockEvidence

DEFAULT = policy_mod.load()
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
