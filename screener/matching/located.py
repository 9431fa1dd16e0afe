"""The located region: SSCD on the part of the query where local features put the work.

A work pasted small into a new photograph fills too little of any fixed region for SSCD to
see it, while a few verified keypoints already say where it sits (the match's quad). The
query is cropped to that box, with a margin, and the crop's SSCD embedding is compared
with the work's stored whole-reference embeddings: a region value (``sscd_region_cosine``)
found where the keypoints pointed. It corroborates the keypoints with a global descriptor,
so that a block can rest on it (`policy.BlockEvidence`) where keypoints alone on a shared
drawing style could not; a look-alike's keypoints point at a part that SSCD does not take
for the work.

One model call for all verified works of a check, and only for those whose box is a
small part of the query (the whole query and the fixed regions already cover the rest).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from screener.store.catalog import StoredFingerprint

REGION = "located"


@dataclass(frozen=True)
class Box:
    """A box in the pixels of the query's working copy."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def area(self) -> int:
        return (self.right - self.left) * (self.bottom - self.top)


def in_working(
    quad: Sequence[tuple[float, float]], original: tuple[int, int], working: tuple[int, int]
) -> list[tuple[float, float]]:
    """A quad in the decoded original's pixels (a `LocalMatch`'s) in the working copy's."""
    sx, sy = working[0] / max(1, original[0]), working[1] / max(1, original[1])
    return [(x * sx, y * sy) for x, y in quad]


def box_of(
    quad: Sequence[tuple[float, float]],
    original: tuple[int, int],
    working: tuple[int, int],
    margin: float,
    min_side: int,
) -> Box | None:
    """The quad's bounding box (original pixels) in the working copy's pixels, widened by
    ``margin`` of its size each way and clipped; None when under ``min_side``."""
    points = in_working(quad, original, working)
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    if not all(np.isfinite(xs + ys)):
        return None
    pad_x, pad_y = margin * (max(xs) - min(xs)), margin * (max(ys) - min(ys))
    left, top = max(0, round(min(xs) - pad_x)), max(0, round(min(ys) - pad_y))
    right = min(working[0], round(max(xs) + pad_x))
    bottom = min(working[1], round(max(ys) + pad_y))
    if right - left < min_side or bottom - top < min_side:
        return None
    return Box(left, top, right, bottom)


def worth_cropping(box: Box, working: tuple[int, int], max_share: float) -> bool:
    """A box that is a small enough part of the query to add anything."""
    return box.area <= max_share * working[0] * working[1]


def best_cosines(
    embeddings: Mapping[str, np.ndarray], stored: Sequence[StoredFingerprint]
) -> dict[str, tuple[float, StoredFingerprint]]:
    """Per work, the highest cosine of its located crop's embedding with any of its
    whole-reference embeddings (dihedral and background variants included)."""
    best: dict[str, tuple[float, StoredFingerprint]] = {}
    for ref in stored:
        query = embeddings.get(ref.work_id)
        if query is None or not (ref.region == "whole" or ref.region.startswith("whole/")):
            continue
        value = float(np.dot(query, np.frombuffer(ref.vector, dtype=np.float32)))
        if ref.work_id not in best or value > best[ref.work_id][0]:
            best[ref.work_id] = (value, ref)
    return best


def crops(image: Image.Image, boxes: Mapping[str, Box]) -> dict[str, Image.Image]:
    """The working copy cropped to each work's box."""
    return {w: image.crop((b.left, b.top, b.right, b.bottom)) for w, b in boxes.items()}
