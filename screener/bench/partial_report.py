"""Partial-copy report from saved accuracy records: the capped probability against the
log-odds, each single signal, and what the service's own bands do to look-alikes.

Reads the ``records.json.gz`` that ``screener bench accuracy`` writes (no screening:
seconds), rescored under a policy. A positive counts at a threshold only when its true
work reaches it and no other work scores higher (the right work named); a negative
(a never-registered look-alike, edited like the copies) counts against the false-positive
rate with its best-scoring work. Where many scores sit at the probability's cap, a
0.1 % false-positive rate has no threshold there; the log-odds keep one.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from screener.core import fusion
from screener.core import policy as policy_mod
from screener.core.policy import Decision, Policy, image_evidence

Values = Mapping[str, float | None]
SCORES = ("fused", "log_odds")


@dataclass(frozen=True)
class Row:
    category: str
    truth: str | None
    candidates: tuple[tuple[str, dict[str, float | None]], ...]


def load(path: Path) -> list[Row]:
    """The saved records' categories, truths and every candidate's values."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        saved = json.load(handle)
    return [
        Row(r["category"], r["truth"], tuple((w, v) for w, v in r["candidates"]))
        for r in saved["records"]
    ]


def _oriented(name: str, value: float | None) -> float:
    if value is None or not math.isfinite(value):
        return -math.inf
    return -value if name.endswith("_hamming") else value


def score_of(name: str, values: Values, policy: Policy) -> float:
    """One candidate's score by ``name``: fused, log_odds or a raw signal (higher closer)."""
    if name == "fused":
        return fusion.fuse(values, policy)
    if name == "log_odds":
        return fusion.log_odds(values, policy)
    return _oriented(name, values.get(name))


def scored(row: Row, name: str, policy: Policy) -> float:
    """A positive's score if its own work is the one named (else -inf); a negative's best."""
    scores = {work: score_of(name, values, policy) for work, values in row.candidates}
    if not scores:
        return -math.inf
    best = max(scores.values())
    if row.truth is None:
        return best
    own = scores.get(row.truth, -math.inf)
    # Single raw signals are reported as the bench does (the true work's value); the
    # fused scores must also name the right work.
    if name in SCORES and own < best:
        return -math.inf
    return own


def threshold(negatives: npt.NDArray[np.float64], fpr: float) -> float:
    """The lowest threshold that lets at most ``fpr`` of the negatives reach it."""
    allowed = math.floor(fpr * negatives.size)
    ranked = np.sort(negatives[np.isfinite(negatives)])[::-1]
    if allowed >= ranked.size:
        return -math.inf
    return float(np.nextafter(ranked[allowed], math.inf))


def decisions(rows: Sequence[Row], policy: Policy) -> dict[str, float]:
    """Shares of negatives the service's own bands block and flag (review or block)."""
    negatives = [r for r in rows if r.truth is None]
    blocked = flagged = 0
    for row in negatives:
        decision = max(
            (_decision(v, policy) for _, v in row.candidates),
            key=_SEVERITY.index,
            default=Decision.ALLOW,
        )
        blocked += decision == Decision.BLOCK
        flagged += decision != Decision.ALLOW
    n = max(1, len(negatives))
    return {"negatives": len(negatives), "blocked": blocked / n, "flagged": flagged / n}


_SEVERITY = [Decision.ALLOW, Decision.REVIEW, Decision.BLOCK]


def _decision(values: Values, policy: Policy) -> Decision:
    """The service's decision for one candidate (`fusion.decision`)."""
    return fusion.decision(fusion.fuse(values, policy), values, policy, policy.bands)


def report(rows: Sequence[Row], policy: Policy, fpr: float) -> dict[str, Any]:
    """Recall at ``fpr`` per category for the fused scores and every measured signal."""
    names = [*SCORES, *(n for n in image_evidence() if _measured(rows, n))]
    categories = sorted({r.category for r in rows})
    out: dict[str, Any] = {"fpr": fpr, "decisions": decisions(rows, policy), "recall": {}}
    at_cap = [r for r in rows if r.truth is not None and scored(r, "fused", policy) >= 0.999999]
    out["positives_at_cap"] = len(at_cap)
    for name in names:
        neg = np.array([scored(r, name, policy) for r in rows if r.truth is None])
        t = threshold(neg, fpr)
        per: dict[str, float | None] = {}
        for category in [*categories, "ALL"]:
            pos = np.array(
                [
                    scored(r, name, policy)
                    for r in rows
                    if r.truth is not None and category in (r.category, "ALL")
                ]
            )
            per[category] = float((pos >= t).mean()) if pos.size else None
        out["recall"][name] = per
    return out


def _measured(rows: Sequence[Row], name: str) -> bool:
    return any(v.get(name) is not None for r in rows for _, v in r.candidates)


def table(result: Mapping[str, Any]) -> str:
    """The report as a Markdown table (categories down, scores across)."""
    recall = result["recall"]
    names = list(recall)
    categories = list(next(iter(recall.values())))
    lines = [
        "| category | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for category in categories:
        cells = [recall[n][category] for n in names]
        lines.append(
            f"| {category} | " + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |"
        )
    d = result["decisions"]
    lines.append("")
    lines.append(
        f"negatives {d['negatives']}: blocked {d['blocked']:.3f}, flagged {d['flagged']:.3f}; "
        f"positives at the probability's cap: {result['positives_at_cap']}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    chosen = policy_mod.load(Path(sys.argv[2]) if len(sys.argv) > 2 else None)
    print(table(report(load(Path(sys.argv[1])), chosen, 0.001)))
