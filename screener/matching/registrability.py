"""Whether an image may become a protected work's reference: a "negative bank" check.

A reference claims every output that looks like it. A flat colour, a 1x1 image, a few
pixels of noise or a smooth gradient claims every plain output (a solid blue 512x512 was
blocked at 0.999999 once a rights holder registered a blue square), and a stock or generic
picture claims every ordinary one. So each reference is measured before it is stored:

- **too little content** (refused; the call fails and nothing is stored). Measured on the
  work-size copy that every signal sees, after trimming the uniform border (the colour of
  the image's edge, within ``border_tolerance``), so a small logo on a large white canvas
  is measured as the logo:

  - ``content_side``: the shorter side of what is left, in the source's pixels. A 1x1
    image, a 4x4 patch or a flat colour (nothing left: 0) says too little to be matched.
  - ``contrast``: the largest standard deviation of the R, G or B values of what is
    left (0-255). A nearly uniform picture (a colour with faint noise) is below it; a
    luminance measure alone would miss a red-on-green design of equal brightness.
  - ``edge_density``: the share of what is left where a neighbouring pixel differs by at
    least ``edge_step`` in some channel. A gradient, a blur or a soft vignette has
    contrast but almost no edges, and every smooth output would resemble it.

  A transparent image is measured over white and over black, and the better of the two
  counts: a white glyph on transparency is real content, shown on a dark page.

- **generic content** (held for an operator: stored, not screened against, until approved).
  The background bank (`screener.matching.background`) is a sample of ordinary pictures. Each bank
  image is scored against the reference exactly as a check scores a query against a work
  (the same signals, regions, calibrations, generic levels and fusion); if the best one
  reaches the policy's ``bank_hold`` band, ordinary outputs would be flagged as copies of
  this reference. That is a judgement an operator makes (a famous stock photo may really
  be someone's work), so the reference waits rather than being refused.

Every finding names its rule, the measured value and the policy's threshold, so that a
caller learns exactly why, and an operator what to judge. The thresholds are the
policy's ``registration`` section; none lives here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

from screener.core import fusion
from screener.core.decode import DecodedImage
from screener.core.errors import NotRegistrable
from screener.core.policy import Policy, Registration
from screener.matching.background import Bank
from screener.matching.signals import EXTRA_BACKGROUNDS, over_background
from screener.store.catalog import StoredFingerprint

Action = Literal["refuse", "hold"]


@dataclass(frozen=True)
class Finding:
    """One rule a reference broke: what was measured, the value, and the threshold."""

    rule: str  # the policy key, e.g. "registration.min_content_side"
    measure: str
    value: float
    threshold: float
    action: Action
    reason: str

    def describe(self) -> str:
        return (
            f"{self.reason} ({self.measure} {_shown(self.value)} "
            f"{'<' if self.action == 'refuse' else '>='} {self.rule} {_shown(self.threshold)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Content:
    """The content measures of one image (see the module docstring)."""

    content_side: float
    contrast: float
    edge_density: float


def _shown(value: float) -> str:
    return f"{value:g}" if math.isfinite(value) else str(value)


def measure(decoded: DecodedImage, rules: Registration) -> Content:
    """The content measures of a decoded image; over white and black for a transparent
    one, the better of each."""
    scale = max(decoded.width / decoded.image.width, decoded.height / decoded.image.height)
    views = [decoded.image]
    if decoded.is_transparent and decoded.alpha is not None:
        views.append(over_background(decoded.image, decoded.alpha, EXTRA_BACKGROUNDS["black"]))
    found = [_measure_view(view, scale, rules) for view in views]
    return Content(
        content_side=max(c.content_side for c in found),
        contrast=max(c.contrast for c in found),
        edge_density=max(c.edge_density for c in found),
    )


def _measure_view(image: Image.Image, scale: float, rules: Registration) -> Content:
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    content = _trim(pixels, rules.border_tolerance)
    if content.size == 0:
        return Content(0.0, 0.0, 0.0)
    side = min(content.shape[0], content.shape[1]) * scale
    contrast = float(content.reshape(-1, 3).std(axis=0).max())
    return Content(round(side, 1), round(contrast, 3), round(_edges(content, rules.edge_step), 6))


def _trim(pixels: npt.NDArray[np.float32], tolerance: float) -> npt.NDArray[np.float32]:
    """The pixels inside the uniform border: the bounding box of every pixel that differs
    from the border's median colour by more than ``tolerance`` in some channel."""
    edge = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    colour = np.median(edge, axis=0)
    differs = (np.abs(pixels - colour) > tolerance).any(axis=2)
    rows, cols = np.flatnonzero(differs.any(axis=1)), np.flatnonzero(differs.any(axis=0))
    if not len(rows):
        return pixels[:0, :0]
    return pixels[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _edges(content: npt.NDArray[np.float32], step: float) -> float:
    """The share of pixels with a neighbour (right or below) at least ``step`` away."""
    h, w = content.shape[:2]
    if h < 2 and w < 2:
        return 0.0
    edge = np.zeros((h, w), dtype=bool)
    if w > 1:
        edge[:, :-1] |= (np.abs(np.diff(content, axis=1)) >= step).any(axis=2)
    if h > 1:
        edge[:-1, :] |= (np.abs(np.diff(content, axis=0)) >= step).any(axis=2)
    return float(edge.mean())


def content_findings(found: Content, rules: Registration) -> list[Finding]:
    """The content rules a reference breaks (each one refuses it)."""
    checks = [
        (
            "min_content_side",
            "content_side",
            found.content_side,
            rules.min_content_side,
            "too small: after trimming its uniform border the image is only a few pixels",
        ),
        (
            "min_contrast",
            "contrast",
            found.contrast,
            rules.min_contrast,
            "nearly uniform: a flat or almost flat colour",
        ),
        (
            "min_edge_density",
            "edge_density",
            found.edge_density,
            rules.min_edge_density,
            "too little detail: almost no edges (a gradient, blur or a few scattered pixels)",
        ),
    ]
    return [
        Finding(f"registration.{key}", name, value, float(limit), "refuse", reason)
        for key, name, value, limit, reason in checks
        if value < limit
    ]


def bank_finding(
    bank: Bank | None,
    fingerprints: Mapping[str, Sequence[StoredFingerprint]],
    policy: Policy,
) -> Finding | None:
    """A hold when an ordinary picture of the bank would be flagged against the reference
    (its fingerprints by signal, as they would be stored), else None."""
    band_name = policy.registration.bank_hold
    if bank is None or band_name == "never":
        return None
    band = policy.bands.review if band_name == "review" else policy.bands.block
    per_image: dict[str, npt.NDArray[np.float64]] = {}
    levels: dict[str, float] = {}
    for signal, refs in fingerprints.items():
        floor = policy.matching.pdq_min_quality if signal == "pdq" else None
        per_image.update(bank.closest(signal, refs, floor))
        for name, by_work in bank.levels(signal, refs, policy.matching.background_k, floor).items():
            levels.update({fusion.generic_name(name): level for level in by_work.values()})
    if not per_image:
        return None
    best, best_image = fusion.fuse(levels, policy), -1  # a bank image with no evidence
    for image in _with_evidence(per_image, policy):
        values: dict[str, float | None] = dict(levels)
        for name, column in per_image.items():
            value = float(column[image])
            values[name] = value if math.isfinite(value) else None
        score = fusion.fuse(values, policy)
        if score > best:
            best, best_image = score, image
    if best < band:
        return None
    return Finding(
        "registration.bank_hold",
        "bank_score",
        round(best, 6),
        band,
        "hold",
        f"looks like an ordinary picture: background bank image #{best_image} would be "
        f"flagged against it (bank_hold: {band_name} band)",
    )


def _with_evidence(per_image: Mapping[str, npt.NDArray[np.float64]], policy: Policy) -> list[int]:
    """The bank images with some evidence against the reference on some weighted signal
    (past the ramp's unshifted start, so never fewer than fusion finds): only these can
    score above an image with none."""
    hit = np.zeros(len(next(iter(per_image.values()))), dtype=bool)
    for name, column in per_image.items():
        calibration = policy.signals.get(name)
        if calibration is None or calibration.weight <= 0:
            continue
        with np.errstate(invalid="ignore"):
            hit |= (column - calibration.lo) / (calibration.hi - calibration.lo) > 0
    return [int(i) for i in np.flatnonzero(hit)]


def refuse(name: str, findings: Sequence[Finding]) -> NotRegistrable:
    """The error that refuses a reference, naming every rule it broke."""
    return NotRegistrable(
        f"{name} cannot be registered: " + "; ".join(f.describe() for f in findings),
        [f.to_dict() for f in findings],
    )
