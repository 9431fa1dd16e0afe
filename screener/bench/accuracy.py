"""Accuracy and threshold tuning: every signal alone and fused, per category.

Runs the real pipeline on a suite, scores each query against its true work (positives)
or against the best of all works (negatives), fits the fusion on one half of the source
images and reports on the other half, and writes the fitted policy (the fitting itself is
`screener.bench.accuracy_fit`).
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from screener.bench.suite import Query, Suite
from screener.bench.thresholds import (
    is_distance,
    letting_through,
    raw_threshold,
    thin,
)
from screener.core import fusion
from screener.core.errors import NotRegistrable
from screener.core.policy import (
    Decision,
    Policy,
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


def split(records: Sequence[Record], seed: int | str) -> tuple[list[Record], list[Record]]:
    """Fit and hold-out halves, keeping every source image's queries together."""

    def half(group: str) -> int:
        return hashlib.sha256(f"{seed}:{group}".encode()).digest()[0] & 1

    return [r for r in records if half(r.group) == 0], [r for r in records if half(r.group) == 1]
