"""Oriented scores (higher is closer), thresholds, calibration ranges and bands: the numpy
arithmetic behind the accuracy benchmark's metrics and fits, apart from its records and
its screening, so that `accuracy` reads as the benchmark itself."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from screener.core.policy import PROMPT_EVIDENCE, Calibration, Policy


def is_distance(name: str) -> bool:
    return name.endswith("_hamming")


def oriented_values(
    values: Sequence[dict[str, float | None]], name: str
) -> npt.NDArray[np.float64]:
    raw = [v.get(name) for v in values]
    return np.array(
        [-np.inf if x is None else (-x if is_distance(name) else x) for x in raw], dtype=np.float64
    )


def raw_threshold(name: str, t: float) -> float | None:
    if not math.isfinite(t):
        return None
    return -t if is_distance(name) else t


def thin(curve: dict[str, list[float]], points: int = 400) -> dict[str, list[float]]:
    n = len(curve["fpr"])
    if n <= points:
        return curve
    keep = np.unique(np.linspace(0, n - 1, points).astype(int))
    return {k: [v[i] for i in keep] for k, v in curve.items()}


def calibration_range(
    pos: npt.NDArray[np.float64], neg: npt.NDArray[np.float64], tail: float, step: float
) -> tuple[float, float] | None:
    """Oriented (lo, hi) from the non-copies' tail.

    Evidence starts where only ``tail`` of the non-copy pairs remain and is full a little
    beyond the closest non-copy ever seen: full evidence from one signal means "closer than
    anything unrelated", which is worth a block on its own.
    """
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    if pos.size < 5 or neg.size < 20:
        return None
    lo = float(np.quantile(neg, 1.0 - tail))
    top = float(neg.max())
    hi = top + max(0.25 * (top - lo), step)  # ``step``: the signal's resolution
    if not np.any(pos > lo):
        return None  # this signal never separates a copy
    return lo, hi


def strictly_below(negatives: npt.NDArray[np.float64], fpr: float) -> float:
    """The lowest threshold that lets strictly fewer than ``fpr`` of the unrelated images
    through (none of 1,000 at 0.1 %, 9 at 1 %): a band is set inside the target on the
    records it is fitted on, because the next unrelated images sample the same thin tail
    again (a band just under the single top one let 0.5 %, not 0.1 %, through held out).
    """
    return letting_through(negatives, max(0, math.ceil(fpr * negatives.size - 1e-9) - 1))


def letting_through(negatives: npt.NDArray[np.float64], allowed: int) -> float:
    """The lowest threshold that ``allowed`` of the negatives reach (ties: fewer)."""
    if allowed >= negatives.size:
        return -math.inf
    ranked = np.sort(negatives)[::-1]
    return float(np.nextafter(ranked[allowed], np.inf))


def band(threshold: float) -> float:
    """A band from a threshold, rounded up so that it never lets more through."""
    return min(1.0, math.ceil(max(threshold, 1e-6) * 1e6) / 1e6)


def prompt_part(
    template: Policy, bias: float | None = None, review: float | None = None
) -> dict[str, Calibration]:
    """The template's prompt calibrations, scaled down if they could reach review alone."""
    part = {n: c for n, c in template.signals.items() if n in PROMPT_EVIDENCE}
    if bias is None or review is None or not part:
        return part
    total = sum(c.weight for c in part.values())
    budget = math.log(review / 2 / (1 - review / 2)) - bias  # logit(review / 2) - bias
    if total <= budget:
        return part
    scale = max(budget, 0.0) / total
    return {n: Calibration(c.lo, c.hi, round(c.weight * scale, 4)) for n, c in part.items()}
