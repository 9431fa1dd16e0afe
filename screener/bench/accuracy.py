"""Accuracy and threshold tuning: every signal alone and fused, per category.

Runs the real pipeline on a suite, scores each query against its true work (positives)
or against the best of all works (negatives), fits the fusion on one half of the source
images and reports on the other half, and writes the fitted policy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from screener.bench.suite import Query, Suite
from screener.bench.thresholds import (
    band,
    calibration_range,
    is_distance,
    letting_through,
    oriented_values,
    prompt_part,
    raw_threshold,
    strictly_below,
    thin,
)
from screener.core import fusion
from screener.core import policy as policy_mod
from screener.core.errors import NotRegistrable
from screener.core.policy import (
    PROMPT_EVIDENCE,
    Bands,
    Calibration,
    Decision,
    Policy,
    families,
    image_evidence,
)
from screener.matching.pipeline import Screener

FUSED = "fused"
FPRS = (0.01, 0.001)


@dataclass(frozen=True)
class Record:
    query_id: str
    category: str
    group: str
    truth: str | None
    values: dict[str, float | None]
    fused: float
    top_work: str | None
    decision: str
    seconds: float
    candidates: tuple[tuple[str, dict[str, float | None]], ...] = ()
    # The same case's log-odds (`fusion.log_odds`), which keep ranking where ``fused``
    # stops at its cap; None in records saved before it was kept (`rank` falls back).
    log_odds: float | None = None


def rank(record: Record) -> float:
    """The score that orders cases for a false-positive operating point: the log-odds, or
    the logit of the fused probability where a record has none (the same order below the
    cap)."""
    if record.log_odds is not None:
        return record.log_odds
    p = min(max(record.fused, 1e-12), 1.0 - 1e-12)
    return math.log(p / (1.0 - p))


def evaluate(
    screener: Screener, suite: Suite, progress: Callable[[int], None] | None = None
) -> list[Record]:
    """Register the suite's works and screen every query. A work the registration rules
    refuse (too little detail, as a rights holder's upload would be), or whose every
    reference they hold for an operator (it looks like a picture of the background bank),
    is left out with its copies, and named on standard error: nothing could find it."""
    refused = set()
    for work_id, paths in suite.works.items():
        try:
            done = screener.registry.register(work_id, paths, title=work_id, owner="benchmark")
        except NotRegistrable as exc:
            refused.add(work_id)
            print(f"left out {work_id}: {exc}", file=sys.stderr)
            continue
        if done.held and done.work.reference_count == 0:
            refused.add(work_id)
            rules = sorted({f["rule"] for held in done.held for f in held.findings})
            print(
                f"left out {work_id}: every reference held for an operator ({', '.join(rules)})",
                file=sys.stderr,
            )
    screener.registry.save()
    records = []
    for query in suite.queries:
        if query.work_id in refused:
            if progress:
                progress(1)
            continue
        records.append(check(screener, query))
        if progress:
            progress(1)
    return records


def check(screener: Screener, query: Query) -> Record:
    """Screen one query: scored against its true work (a copy) or the best of all works."""
    include = [query.work_id] if query.work_id else []
    analysis = screener.analyse(query.path, include_works=include)
    candidates = analysis.candidates
    top = max(  # the service's order: the most severe decision, then the highest score
        candidates,
        key=lambda m: (_SEVERITY.index(Decision(m.decision)), m.fused_score),
        default=None,
    )
    odds: float | None
    if query.work_id is not None:
        own = next(m for m in candidates if m.work_id == query.work_id)
        values, fused, odds = dict(own.signals), own.fused_score, own.log_odds
    else:
        values = _best_values(candidates)
        fused = top.fused_score if top else 0.0
        odds = max((m.log_odds for m in candidates), default=None)
    return Record(
        query.id,
        query.category,
        query.group,
        query.work_id,
        values,
        fused,
        top.work_id if top else None,
        analysis.verdict.decision,
        analysis.verdict.timings_ms["total"] / 1000.0,
        tuple((m.work_id, dict(m.signals)) for m in candidates),
        odds,
    )


def rescore(records: Sequence[Record], policy: Policy) -> list[Record]:
    """The records as another policy would have scored them (same candidates): each
    candidate decided as the service decides it (`fusion.decision`: bands, block evidence,
    the character route), the top work the most severe, then the highest scored."""
    out = []
    for record in records:
        fused = {work: fusion.fuse(values, policy) for work, values in record.candidates}
        odds = {work: fusion.log_odds(values, policy) for work, values in record.candidates}
        decided = {
            work: fusion.decision(
                fused[work],
                values,
                policy,
                policy.bands_for(work),
                floored=work not in policy.work_overrides,
            )
            for work, values in record.candidates
        }
        top = max(fused, key=lambda w: (_SEVERITY.index(decided[w]), fused[w]), default=None)
        if record.truth is not None:
            score = fused.get(record.truth, 0.0)
            ranked = odds.get(record.truth)
            decision = decided.get(record.truth, Decision.ALLOW)
        else:
            score = max(fused.values(), default=0.0)
            ranked = max(odds.values(), default=None)
            decision = decided[top] if top is not None else Decision.ALLOW
        out.append(
            replace(record, fused=score, top_work=top, decision=decision.value, log_odds=ranked)
        )
    return out


_SEVERITY = [Decision.ALLOW, Decision.REVIEW, Decision.BLOCK]


def _best_values(candidates: Sequence[Any]) -> dict[str, float | None]:
    best: dict[str, float | None] = {}
    for match in candidates:
        for name, value in match.signals.items():
            if value is None:
                best.setdefault(name, None)
                continue
            current = best.get(name)
            closer = (
                value < current
                if is_distance(name) and current is not None
                else (current is None or value > current)
            )
            if current is None or closer:
                best[name] = value
    return best


def oriented(records: Sequence[Record], name: str) -> npt.NDArray[np.float64]:
    """Scores where higher means closer; a missing value is the lowest possible."""
    if name == FUSED:
        return np.array([rank(r) for r in records], dtype=np.float64)
    out = np.full(len(records), -np.inf)
    for i, record in enumerate(records):
        value = record.values.get(name)
        if value is not None:
            out[i] = -value if is_distance(name) else value
    return out


def threshold_at(negatives: npt.NDArray[np.float64], fpr: float) -> float:
    """The lowest threshold that lets at most ``fpr`` of the negatives reach it."""
    return letting_through(negatives, math.floor(fpr * negatives.size))


def roc(pos: npt.NDArray[np.float64], neg: npt.NDArray[np.float64]) -> dict[str, list[float]]:
    thresholds = np.unique(np.concatenate([pos, neg]))[::-1]
    tpr = [float((pos >= t).mean()) for t in thresholds] if pos.size else []
    fpr = [float((neg >= t).mean()) for t in thresholds] if neg.size else []
    return {"fpr": [0.0, *fpr], "tpr": [0.0, *tpr]}


def auc(curve: dict[str, list[float]]) -> float:
    return float(np.trapezoid(curve["tpr"], curve["fpr"])) if curve["fpr"] else float("nan")


def metrics(records: Sequence[Record], names: Sequence[str]) -> dict[str, Any]:
    """Recall at fixed false-positive rates per score, overall and per category."""
    positives = [r for r in records if r.truth is not None]
    negatives = [r for r in records if r.truth is None]
    categories = sorted({r.category for r in records})
    report: dict[str, Any] = {"counts": {"positives": len(positives), "negatives": len(negatives)}}
    scores: dict[str, Any] = {}
    for name in names:
        pos, neg = oriented(positives, name), oriented(negatives, name)
        if not np.isfinite(pos).any():
            continue
        curve = roc(pos, neg)
        entry: dict[str, Any] = {"auc": auc(curve), "roc": thin(curve), "at_fpr": {}}
        for target in FPRS:
            t = threshold_at(neg, target)
            per_category = {}
            for category in categories:
                cat_pos = oriented([r for r in positives if r.category == category], name)
                cat_neg = oriented([r for r in negatives if r.category == category], name)
                per_category[category] = {
                    "recall": float((cat_pos >= t).mean()) if cat_pos.size else None,
                    "fpr": float((cat_neg >= t).mean()) if cat_neg.size else None,
                }
            entry["at_fpr"][str(target)] = {
                "threshold": raw_threshold(name, t),
                "recall": float((pos >= t).mean()) if pos.size else None,
                "fpr": float((neg >= t).mean()) if neg.size else None,
                "per_category": per_category,
            }
        scores[name] = entry
    report["scores"] = scores
    identified = [r for r in positives if r.top_work == r.truth]
    report["top1_accuracy"] = len(identified) / len(positives) if positives else None
    report["top1_by_category"] = {
        c: _share([r.top_work == r.truth for r in positives if r.category == c]) for c in categories
    }
    seconds = np.array([r.seconds for r in records])
    report["seconds_per_image"] = {
        "mean": float(seconds.mean()) if seconds.size else None,
        "p50": float(np.percentile(seconds, 50)) if seconds.size else None,
        "p99": float(np.percentile(seconds, 99)) if seconds.size else None,
    }
    return report


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


# fitting -----------------------------------------------------------------------------------------


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


INNER = "inner"  # the seed of the fit's inner split, never a run's (integer) seed


def split(records: Sequence[Record], seed: int | str) -> tuple[list[Record], list[Record]]:
    """Fit and hold-out halves, keeping every source image's queries together."""

    def half(group: str) -> int:
        return hashlib.sha256(f"{seed}:{group}".encode()).digest()[0] & 1

    return [r for r in records if half(r.group) == 0], [r for r in records if half(r.group) == 1]
