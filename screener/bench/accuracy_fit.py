"""Fitting a policy on accuracy records: the bands alone, or the calibrations too, judged
on an inner split and refitted on all the records (`fit`). The records and their
rescoring are `screener.bench.accuracy`'s."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from screener.bench.accuracy import Record, rank, rescore, split, threshold_at
from screener.bench.thresholds import (
    band,
    calibration_range,
    is_distance,
    oriented_values,
    prompt_part,
    strictly_below,
)
from screener.core import fusion
from screener.core import policy as policy_mod
from screener.core.policy import (
    PROMPT_EVIDENCE,
    Bands,
    Calibration,
    Policy,
    families,
    image_evidence,
)

INNER = "inner"  # the seed of the fit's inner split, never a run's (integer) seed


def fit(
    records: Sequence[Record],
    template: Policy,
    target_fpr: float = 0.001,
    review_fpr: float = 0.01,
) -> Policy:
    """The best of several policies on these records, judged at ``target_fpr`` by the
    worst category's recall, then overall recall (`judge`).

    One keeps the template's calibrations and weights and fits only the bands; the others
    also refit the calibrations on the non-copies' tail (`fit_ramps`): a plain logistic
    fusion or one where signals of one family (`families()`: SSCD on the whole and on
    regions, the hashes) add only their largest evidence, each with and without the
    weight on the strongest single evidence that makes one signal at full evidence block
    on its own (`ALONE_BLOCKS`). Which wins depends on the signals: before local features
    the template's ramps ranked Oxygen copies better (0.83 against 0.65 held out).
    Choosing by measurement beats trusting any one.
    """
    fitters: list[Callable[[Sequence[Record], Policy, float, float], Policy]] = [
        fit_bands,
        *(
            partial(fit_ramps, max_weight=weight, groups=groups)
            for groups in ({}, families())
            for weight in (0.0, ALONE_BLOCKS)
        ),
    ]
    # Judge each way of fitting on records it was not fitted on (an inner split), then
    # refit the winner on all of them: ramps fitted and judged on the same records look
    # perfect, because their ends come from those very records.
    # Its own seed: a split by the run's seed would put every record on one side again.
    inner_fit, inner_judge = split(records, seed=INNER)
    if inner_fit and inner_judge and any(r.truth for r in inner_judge):
        scores: list[tuple[float, float]] = []
        for fitter in fitters:
            try:
                policy = fitter(inner_fit, template, target_fpr, review_fpr)
            except ValueError:
                scores.append((-1.0, -1.0))
                continue
            scores.append(judge(inner_judge, policy, target_fpr))
        # The best on the inner split first; where it cannot be fitted on all the records
        # (a weight that held on part of them need not on all), the next best.
        ranked = sorted(range(len(fitters)), key=scores.__getitem__, reverse=True)
        for index in ranked:
            try:
                return fitters[index](records, template, target_fpr, review_fpr)
            except ValueError:
                continue
        raise ValueError("no way of fitting works on these records")
    fitted = []
    for fitter in fitters:
        try:
            fitted.append(fitter(records, template, target_fpr, review_fpr))
        except ValueError:
            continue
    if not fitted:
        raise ValueError("no way of fitting works on these records")
    return max(fitted, key=lambda p: recall_at(records, p, target_fpr))


def judge(records: Sequence[Record], policy: Policy, fpr: float) -> tuple[float, float]:
    """(worst category's recall, overall recall) at ``fpr``: a policy is as good as the
    kind of copy it misses most, then as its recall over all of them."""
    scored = rescore(records, policy)
    threshold = threshold_at(np.array([rank(r) for r in scored if r.truth is None]), fpr)
    hits: dict[str, list[bool]] = {}
    for r in scored:
        if r.truth is not None:
            hits.setdefault(r.category, []).append(r.top_work == r.truth and rank(r) >= threshold)
    if not hits:
        return 0.0, 0.0
    every = [h for found in hits.values() for h in found]
    return min(float(np.mean(found)) for found in hits.values()), float(np.mean(every))


def recall_at(records: Sequence[Record], policy: Policy, fpr: float) -> float:
    """Share of copies whose fused score clears the ``fpr`` threshold of the non-copies."""
    scored = rescore(records, policy)
    pos = np.array([rank(r) for r in scored if r.truth is not None and r.top_work == r.truth])
    neg = np.array([rank(r) for r in scored if r.truth is None])
    copies = sum(r.truth is not None for r in scored)
    return float((pos >= threshold_at(neg, fpr)).sum() / copies) if copies else 0.0


def fit_bands(
    records: Sequence[Record], template: Policy, target_fpr: float, review_fpr: float
) -> Policy:
    """The template with bands that let the target rates of non-copies through."""
    return _with_bands(records, template, template.signals, template.bias, target_fpr, review_fpr)


def _with_bands(
    records: Sequence[Record],
    template: Policy,
    signals: Mapping[str, Calibration],
    bias: float,
    target_fpr: float,
    review_fpr: float,
) -> Policy:
    image = {n: c for n, c in signals.items() if n not in PROMPT_EVIDENCE}
    draft = replace(template, bias=bias, signals={**image, **prompt_part(template)})
    unrelated = rescore([r for r in records if r.truth is None], draft)
    fused = np.array([r.fused for r in unrelated])
    block = band(strictly_below(fused, target_fpr))
    odds = np.array([rank(r) for r in unrelated])
    rule = draft.block_evidence
    if rule is not None and rule.min_log_odds is not None:
        # The floor is in the units of these weights: fitted the same way as the band.
        # Where unrelated images (same-brand look-alikes) reach the probability's cap, no
        # band lies between them and the copies, and the floor alone sets the rate: the
        # block band then starts at the cap.
        floor = _floor(odds, target_fpr)
        if floor is not None:
            rule = replace(rule, min_log_odds=floor)
            block = min(block, fusion.TOP_SCORE)
    review = min(band(strictly_below(fused, review_fpr)), block)
    # The review floor likewise, at the review rate: the band alone sends every unrelated
    # image at the cap to review.
    review_floor, fitted = draft.review_min_log_odds, _floor(odds, review_fpr)
    if review_floor is not None and fitted is not None:
        review_floor = fitted
    prompt = prompt_part(template, bias=bias, review=review)
    body = replace(
        draft,
        signals={**image, **prompt},
        bands=Bands(review=review, block=block),
        block_evidence=rule,
        review_min_log_odds=review_floor,
    )
    digest = hashlib.sha256(policy_mod.dumps(body).encode()).hexdigest()[:8]
    version = f"fit-{dt.date.today().isoformat()}-{digest}"
    return policy_mod.parse({**body.to_dict(), "version": version}, "the fitted policy")


def _floor(odds: npt.NDArray[np.float64], fpr: float) -> float | None:
    """A log-odds floor that lets strictly fewer than ``fpr`` of ``odds`` through, rounded
    up; None where the records cannot set one."""
    floor = strictly_below(odds, fpr)
    return math.ceil(floor * 1000) / 1000 if math.isfinite(floor) else None


def fit_ramps(
    records: Sequence[Record],
    template: Policy,
    target_fpr: float = 0.001,
    review_fpr: float = 0.01,
    tail: float = 0.01,
    bias: float = -6.0,
    alone: float = 0.95,
    l2: float = 1e-3,
    max_weight: float | None = 0.0,
    groups: Mapping[str, tuple[str, ...]] | None = None,
) -> Policy:
    """Fit calibrations, fusion weights and bands on benchmark records.

    Every signal is calibrated on the non-copies' tail (see `calibration_range`); its
    weight is at least what lets full evidence alone reach the fused score ``alone``, and
    a logistic fit raises weights where signals agreeing on copies earn it. The bands are
    the fused scores that let ``target_fpr`` (block) and ``review_fpr`` (review) of the
    unrelated images through. ``max_weight`` is the weight on the strongest single
    evidence; `ALONE_BLOCKS` (None) chooses the least that lets any one image signal at
    full evidence reach the block band alone. ``groups`` (default: the template's) are
    the policy's groups of signals that add only their largest evidence.
    """
    if groups is not None:
        template = replace(template, groups=dict(groups))
    negatives = [r for r in records if r.truth is None]
    # Every (query, candidate work) pair is one example: the true work's pair is a copy,
    # every other candidate's pair is not, since a verdict takes the most severe candidate.
    pairs = [(values, work == r.truth) for r in records for work, values in r.candidates]
    pos_values = [v for v, is_copy in pairs if is_copy]
    neg_values = [v for v, is_copy in pairs if not is_copy]
    if not pos_values or not neg_values or not negatives:
        raise ValueError("fitting needs both copies and unrelated images")
    signals: dict[str, Calibration] = {}
    against = template.contradiction.evidence if template.contradiction else None
    kept_names = {n for n in (template.margin_gate, against) if n is not None}
    for name in image_evidence():
        if name in kept_names:
            continue  # it gates the margin or counts against: the template's calibration
        bounds = calibration_range(
            oriented_values(pos_values, name),
            oriented_values(neg_values, name),
            tail,
            step=1.0 if is_distance(name) else 0.01,
        )
        if bounds is None:
            continue
        lo, hi = bounds
        if is_distance(name):
            lo, hi = -lo, -hi
        signals[name] = Calibration(lo=round(lo, 4), hi=round(hi, 4), weight=1.0)
    if not signals:
        raise ValueError("no signal separates copies from unrelated images in these records")
    names = list(signals)
    kept = {name: template.signals[name] for name in kept_names}
    draft = replace(template, signals={**signals, **kept, **prompt_part(template)})
    features = np.array(
        [[fusion.evidence_of(v, n, draft.signals[n]) for n in names] for v, _ in pairs]
    )
    labels = np.array([1.0 if is_copy else 0.0 for _, is_copy in pairs])
    weights = np.where(labels == 1, 0.5 / labels.sum(), 0.5 / (1 - labels).sum())

    def loss(w: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        z = features @ w + bias
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))
        value = -np.sum(
            weights * (labels * np.log(p + 1e-12) + (1 - labels) * np.log(1 - p + 1e-12))
        )
        grad = features.T @ (weights * (p - labels)) + 2 * l2 * w
        return float(value + l2 * float(w @ w)), grad

    floor = math.log(alone / (1 - alone)) - bias
    result = minimize(
        loss,
        np.full(len(names), floor),
        jac=True,
        method="L-BFGS-B",
        bounds=[(floor, 40.0)] * len(names),
    )
    signals = {
        n: Calibration(signals[n].lo, signals[n].hi, round(float(w), 4))
        for n, w in zip(names, result.x, strict=True)
    }
    # Signals these records never measured (CLIP where it cannot load, the background
    # normalisation without a bank) keep the template's hand-set calibration.
    unmeasured = {
        n: c
        for n, c in template.signals.items()
        if n in image_evidence() and n not in signals and not _measured(records, n)
    }
    every = {**signals, **unmeasured, **kept}
    if max_weight is not None:
        draft = replace(template, max_weight=max_weight)
        return _with_bands(records, draft, every, bias, target_fpr, review_fpr)
    for weight in ALONE_WEIGHTS:
        # Scale the logit down where it could pass TOP_SCORE's: a saturated fused score
        # ranks nothing (the order of scores, all a policy uses, is unchanged by it).
        top = bias + sum(c.weight for c in every.values()) + weight
        scale = min(1.0, LOGIT_ROOM / top) if top > 0 else 1.0
        scaled = {n: replace(c, weight=round(c.weight * scale, 4)) for n, c in every.items()}
        draft = replace(template, max_weight=round(weight * scale, 4))
        policy = _with_bands(records, draft, scaled, bias * scale, target_fpr, review_fpr)
        if _alone_blocks(policy, {n: scaled[n] for n in signals}):
            return policy
    raise ValueError("no strongest-evidence weight lets one signal at full evidence block")


def _alone_blocks(policy: Policy, fitted: Mapping[str, Calibration]) -> bool:
    """Whether each fitted image signal at full evidence, alone, reaches the block band."""
    return all(
        fusion.fuse({name: calibration.hi}, policy) >= policy.bands.block
        for name, calibration in fitted.items()
        if calibration.weight > 0
    )


def _measured(records: Sequence[Record], name: str) -> bool:
    return any(values.get(name) is not None for r in records for _, values in r.candidates)


# `fit_ramps(max_weight=ALONE_BLOCKS)`: the strongest-evidence weight is the least of
# ALONE_WEIGHTS with which one image signal at full evidence (closer than any unrelated
# pair in the fit, see `calibration_range`) blocks on its own: a work pasted into a new
# scene is often seen by local features alone, and a verified geometric match that no
# unrelated image reaches is worth a block. The bands are refitted at every step, so
# the unrelated images' rate at block stays the target.
ALONE_BLOCKS = None
ALONE_WEIGHTS = tuple(float(w) for w in range(0, 41))
LOGIT_ROOM = math.log(fusion.TOP_SCORE / (1 - fusion.TOP_SCORE)) - 1.0
