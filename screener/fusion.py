"""Fusion: raw per-signal values to one calibrated score in [0, 1]. Pure.

Each raw value becomes evidence in [0, 1] by its policy calibration; the fused score is a
logistic function of the weighted evidence (of a group of signals that measure the same
thing, only the largest), plus ``max_weight`` times the strongest single image evidence
(so that one signal closer than anything unrelated can decide alone; the prompt never
can). Weights are non-negative, so more similarity on any signal never lowers the fused
score, and a missing signal adds no evidence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from screener.policy import IMAGE_EVIDENCE, Calibration, Policy, sigmoid

# The highest fused score (scores are reported to 6 decimals): a band at 1.0 is never
# reached, so a work override of review 1.0 / block 1.0 means "never flag".
TOP_SCORE = 0.999999


def evidence(value: float | None, calibration: Calibration) -> float:
    """Evidence in [0, 1] that a raw value indicates a copy (0 for a missing value)."""
    if value is None or not math.isfinite(value):
        return 0.0
    position = (value - calibration.lo) / (calibration.hi - calibration.lo)
    return min(1.0, max(0.0, position))


def contributions(values: Mapping[str, float | None], policy: Policy) -> dict[str, float]:
    """Each signal's weighted evidence: its share of the fused logit. In a group of the
    policy only the largest counts; the others' shares are 0."""
    shares = {
        name: calibration.weight * evidence(values.get(name), calibration)
        for name, calibration in policy.signals.items()
    }
    for members in policy.groups.values():
        present = [name for name in members if name in shares]
        if len(present) > 1:
            top = max(present, key=shares.__getitem__)
            for name in present:
                if name != top:
                    shares[name] = 0.0
    return shares


def strongest(values: Mapping[str, float | None], policy: Policy) -> float:
    """The largest single evidence among the weighted image signals."""
    return max(
        (
            evidence(values.get(name), calibration)
            for name, calibration in policy.signals.items()
            if calibration.weight > 0 and name in IMAGE_EVIDENCE
        ),
        default=0.0,
    )


def fuse(values: Mapping[str, float | None], policy: Policy) -> float:
    """The fused score for one candidate work's raw signal values."""
    logit = policy.bias + sum(contributions(values, policy).values())
    if policy.max_weight:
        logit += policy.max_weight * strongest(values, policy)
    return min(sigmoid(logit), TOP_SCORE)
