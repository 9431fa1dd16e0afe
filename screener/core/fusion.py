"""Fusion: raw per-signal values to one calibrated score in [0, 1]. Pure.

Each raw value becomes evidence in [0, 1] by its policy calibration; the fused score is a
logistic function of the weighted evidence (of a group of signals that measure the same
thing, only the largest), plus ``max_weight`` times the strongest single image evidence
(so that one signal closer than anything unrelated can decide alone; the prompt never
can). Weights are non-negative, so more similarity on any signal never lowers the fused
score, and a missing signal adds no evidence. The one evidence that counts against a
copy is the policy's contradiction (`contradiction`): the query lined up with the work
and compared cell by cell; it takes from the logit what that agreement lacks.

Where the background bank gives a work's *generic level* for a signal (the value its k-th
closest ordinary picture reaches, under ``generic_name(name)`` beside the raw values), the
signal's ramp starts no earlier than that level: it moves towards ``hi`` by as much as
the level is past ``lo``, by at most one ramp width. A work that ordinary pictures come
close to needs a closer query for the same evidence; a distinctive one is unaffected. A
more generic work never scores higher, all else equal.

A work's *cohort level* (under ``cohort_name(name)``: the value that the k-th closest
other registered work reaches against it) moves the ramp in the same way, and of the two
levels the one that moves it further counts: a bank calibrates only against the style it
holds, while the registry's own works are the style that unrelated queries in a themed
catalogue come in (an icon set, one game's portraits).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from screener.core.policy import (
    Bands,
    Calibration,
    Decision,
    Policy,
    decide,
    image_evidence,
    sigmoid,
)

# The highest fused score (scores are reported to 6 decimals): a band at 1.0 is never
# reached, so a work override of review 1.0 / block 1.0 means "never flag".
TOP_SCORE = 0.999999
GENERIC_SUFFIX = "_generic"
COHORT_SUFFIX = "_cohort"
LEVEL_SUFFIXES = (GENERIC_SUFFIX, COHORT_SUFFIX)


def generic_name(name: str) -> str:
    """Where a work's generic level for evidence ``name`` sits among the values."""
    return f"{name}{GENERIC_SUFFIX}"


def cohort_name(name: str) -> str:
    """Where a work's cohort level for evidence ``name`` sits among the values."""
    return f"{name}{COHORT_SUFFIX}"


def is_level(name: str) -> bool:
    """A work's level (generic or cohort) rather than a measured value."""
    return name.endswith(LEVEL_SUFFIXES)


def evidence(
    value: float | None, calibration: Calibration, *levels: float | None, cap: float = 1.0
) -> float:
    """Evidence in [0, 1] that a raw value indicates a copy (0 for a missing value), with
    the ramp moved past the work's level where it is past ``lo`` (of several levels, the
    one that moves it furthest), by at most one ramp width. With ``cap`` above 1 a value
    past ``hi`` keeps counting, in ramp widths, up to ``cap`` (see `log_odds`)."""
    if value is None or not math.isfinite(value):
        return 0.0
    lo, width = calibration.lo, calibration.hi - calibration.lo
    shift = max(
        (
            min(1.0, max(0.0, (level - lo) / width))
            for level in levels
            if level is not None and math.isfinite(level)
        ),
        default=0.0,
    )
    lo += width * shift
    return min(cap, max(0.0, (value - lo) / width))


def evidence_of(
    values: Mapping[str, float | None], name: str, calibration: Calibration, cap: float = 1.0
) -> float:
    """:func:`evidence` of signal ``name`` among a candidate's values (and levels)."""
    return evidence(
        values.get(name),
        calibration,
        values.get(generic_name(name)),
        values.get(cohort_name(name)),
        cap=cap,
    )


def contributions(
    values: Mapping[str, float | None], policy: Policy, cap: float = 1.0
) -> dict[str, float]:
    """Each signal's weighted evidence: its share of the fused logit. In a group of the
    policy only the largest counts; the others' shares are 0. The policy's contradiction
    evidence, where measured, has a share of minus its penalty (`contradiction`)."""
    shares = {
        name: calibration.weight * evidence_of(values, name, calibration, cap)
        for name, calibration in policy.signals.items()
    }
    for members in policy.groups.values():
        present = [name for name in members if name in shares]
        if len(present) > 1:
            top = max(present, key=shares.__getitem__)
            for name in present:
                if name != top:
                    shares[name] = 0.0
    if policy.contradiction is not None:
        shares[policy.contradiction.evidence] -= contradiction(values, policy)
    return shares


def contradiction(values: Mapping[str, float | None], policy: Policy) -> float:
    """What the policy's contradiction takes from the logit (`policy.Contradiction`): its
    weight times the evidence its signal lacks of full; 0 where the signal was not
    measured (a check that could not line the query up with the work loses nothing)."""
    rule = policy.contradiction
    if rule is None:
        return 0.0
    value = values.get(rule.evidence)
    if value is None or not math.isfinite(value):
        return 0.0
    return rule.weight * (1.0 - evidence_of(values, rule.evidence, policy.signals[rule.evidence]))


def strongest(values: Mapping[str, float | None], policy: Policy, cap: float = 1.0) -> float:
    """The largest single evidence among the weighted image signals."""
    image = image_evidence()
    return max(
        (
            evidence_of(values, name, calibration, cap)
            for name, calibration in policy.signals.items()
            if calibration.weight > 0 and name in image
        ),
        default=0.0,
    )


def _weighted(values: Mapping[str, float | None], policy: Policy, cap: float = 1.0) -> float:
    """The weighted evidence (the fused logit less its bias), each signal counted up to
    ``cap`` ramp widths: what `margin` and `log_odds` share."""
    total = sum(contributions(values, policy, cap).values())
    if policy.max_weight:
        total += policy.max_weight * strongest(values, policy, cap)
    return total


def fuse(values: Mapping[str, float | None], policy: Policy) -> float:
    """The fused score for one candidate work's raw signal values."""
    logit = policy.bias + sum(contributions(values, policy).values())
    if policy.max_weight:
        logit += policy.max_weight * strongest(values, policy)
    return min(sigmoid(logit), TOP_SCORE)


def block_supported(values: Mapping[str, float | None], policy: Policy) -> bool:
    """Whether the case carries evidence a block may rest on (`policy.BlockEvidence`): a
    global signal at full evidence and, where the policy sets a floor, that much evidence in
    all (`log_odds`); always, where the policy names no rule."""
    rule = policy.block_evidence
    if rule is None:
        return True
    if rule.min_log_odds is not None and log_odds(values, policy) < rule.min_log_odds:
        return False
    return any(
        evidence_of(values, name, policy.signals[name]) >= rule.min_evidence
        for name in rule.signals
        if name in policy.signals
    )


def character_routed(values: Mapping[str, float | None], policy: Policy) -> bool:
    """Whether the policy's character route (`policy.CharacterReview`) sends this case to
    review: its character evidence reaches the route's threshold."""
    route = policy.character_review
    if route is None:
        return False
    value = values.get(route.evidence)
    return value is not None and math.isfinite(value) and value >= route.threshold


def decision(
    fused: float,
    values: Mapping[str, float | None],
    policy: Policy,
    bands: Bands,
    floored: bool = True,
) -> Decision:
    """The decision for one candidate work: the bands, a block only on evidence it may rest
    on (`block_supported`), a review only on the policy's `review_min_log_odds` (unless
    not ``floored``: a work with bands of its own, which an operator set), and an allow
    turned to review by the character route."""
    decided = decide(fused, bands)
    if decided is Decision.BLOCK and not block_supported(values, policy):
        decided = Decision.REVIEW
    floor = policy.review_min_log_odds if floored else None
    if decided is Decision.REVIEW and floor is not None and log_odds(values, policy) < floor:
        decided = Decision.ALLOW
    if decided is Decision.ALLOW and character_routed(values, policy):
        return Decision.REVIEW
    return decided


def margin(values: Mapping[str, float | None], policy: Policy) -> float:
    """What the evidence past full adds to the logit: each signal counted up to
    ``policy.margin_cap`` ramp widths past its ``hi`` rather than up to it (never below 0)."""
    return _margin(values, policy, _weighted(values, policy))


def _margin(values: Mapping[str, float | None], policy: Policy, full: float) -> float:
    """:func:`margin`, given the weighted evidence up to full (``full``)."""
    cap = max(1.0, policy.margin_cap)
    if cap == 1.0:
        return 0.0
    return max(0.0, _weighted(values, policy, cap) - full)


def margin_share(values: Mapping[str, float | None], policy: Policy) -> float:
    """How much of the margin counts: the evidence of the policy's ``margin_gate`` in
    [0, 1]; all of it where the policy names no gate or the case has no value for it."""
    gate = policy.margin_gate
    if gate is None:
        return 1.0
    value = values.get(gate)
    if value is None or not math.isfinite(value):
        return 1.0
    return evidence_of(values, gate, policy.signals[gate])


def log_odds(values: Mapping[str, float | None], policy: Policy) -> float:
    """The fused logit with evidence past a ramp's ``hi`` still counted, up to
    ``policy.margin_cap`` ramp widths per signal, in the share its ``margin_gate`` allows:
    the score that keeps ordering cases where :func:`fuse` has reached its cap. Below every
    ``hi`` it equals the logit that :func:`fuse` maps to a probability; it never falls as
    any signal gets closer."""
    full = _weighted(values, policy)
    return policy.bias + full + margin_share(values, policy) * _margin(values, policy, full)
