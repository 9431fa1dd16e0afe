"""Query-side region proposals found in the picture itself. Pure (numpy in, regions out).

The fixed regions (`screener.core.regions`) cut every query the same way: a work padded with a
border, or one tile of a collage, fills a part of the query that no fixed cell fits. Two
cheap measures find those parts, so that the whole-image signals compare the part alone
against the whole reference:

- the *content box*: the query without a uniform border (a padded copy);
- *tiles*: a collage's cells, split at straight lines that cross the whole picture, either
  a seam (most of the line is a strong step between its two sides) or a gutter (a uniform
  band with content on both sides); each tile without its own uniform border.

A picture with neither gives no proposals and costs only the measuring (under a
millisecond at the measuring size), so the usual check pays nothing for them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from screener.core.regions import Region

# The long side the picture is measured at: seams and borders survive this downscale.
MEASURE_SIDE = 128


@dataclass(frozen=True)
class ProposalRules:
    """What counts as a border, a seam or a gutter (from the policy's ``proposals``)."""

    # A row or column is uniform when every channel's spread along it stays below this
    # (0-255).
    uniform_spread: float = 24.0
    # A seam: at least ``seam_share`` of the line steps by ``seam_step`` or more (0-255,
    # mean over channels) between the pixels on its two sides.
    seam_step: float = 24.0
    seam_share: float = 0.6
    # Cuts only this far inside the picture (share of the side), tiles at least this big.
    min_tile: float = 0.25
    # The content box is proposed when the border takes at least this share of the area.
    min_border: float = 0.12
    # At most this many tiles (a grid of up to 3 x 3).
    max_tiles: int = 9
    # The located region (`screener.matching.located`): the box where verified keypoints put a
    # work, widened by ``located_margin`` of its size each way, cropped when at least
    # ``located_min_side`` px and at most ``located_max_share`` of the query's area; for
    # at most ``located_top`` works (most inliers first) with ``located_min_inliers``.
    located_margin: float = 0.15
    located_min_side: int = 24
    located_max_share: float = 0.5
    located_top: int = 2
    located_min_inliers: int = 8
    # The placed region (`screener.matching.placed`): the references of the ``placed_pool``
    # best candidates by fused score are placed on a coarse copy of the query, and the
    # query on a coarse copy of each reference; the ``placed_top`` that correlate best
    # (``placed_within_top`` the other way) are placed exactly and cropped when the box
    # takes at most ``placed_max_share`` of the picture it is in. Nothing is placed when a
    # candidate's whole-image SSCD cosine reaches ``placed_skip``: the query is that work's
    # copy.
    placed_pool: int = 10
    placed_top: int = 2
    placed_within_top: int = 1
    placed_max_share: float = 0.6
    placed_skip: float = 0.9

    def __post_init__(self) -> None:
        if not (0 < self.uniform_spread < 255 and 0 < self.seam_step < 255):
            raise ValueError("uniform_spread and seam_step are 0-255 steps, above 0")
        if not (0 < self.seam_share <= 1 and 0 < self.min_tile < 0.5 and 0 < self.min_border < 1):
            raise ValueError("seam_share, min_tile and min_border are shares (min_tile < 0.5)")
        if self.max_tiles < 2:
            raise ValueError("max_tiles must be at least 2")
        if not (0 <= self.located_margin <= 1 and 0 < self.located_max_share <= 1):
            raise ValueError("located_margin and located_max_share are shares")
        if min(self.placed_pool, self.placed_top, self.placed_within_top) < 0 or not (
            0 < self.placed_max_share <= 1
        ):
            raise ValueError(
                "placed_pool, placed_top and placed_within_top must be at least 0 (0: none), "
                "placed_max_share a share"
            )
        if self.located_min_side < 8 or self.located_top < 0 or self.located_min_inliers < 1:
            raise ValueError(
                "located_min_side must be at least 8, located_top at least 0 (0: none) "
                "and located_min_inliers at least 1"
            )


Pixels = npt.NDArray[np.float32]


def measure_copy(rgb: npt.NDArray[np.uint8]) -> Pixels:
    """The picture at the measuring size (nearest pixels: seams stay sharp)."""
    height, width = rgb.shape[:2]
    scale = min(1.0, MEASURE_SIDE / max(height, width))
    rows = np.minimum((np.arange(max(1, round(height * scale))) / scale).astype(int), height - 1)
    cols = np.minimum((np.arange(max(1, round(width * scale))) / scale).astype(int), width - 1)
    pixels: Pixels = rgb[rows][:, cols].astype(np.float32)
    return pixels


def _uniform(lines: Pixels, spread: float) -> npt.NDArray[np.bool_]:
    """Per line (axis 0 of ``lines``: lines x pixels x channels), whether it is uniform."""
    extent = lines.max(axis=1) - lines.min(axis=1)
    result: npt.NDArray[np.bool_] = (extent < spread).all(axis=-1)
    return result


def content_box(pixels: Pixels, rules: ProposalRules) -> tuple[int, int, int, int]:
    """The box (x0, y0, x1, y1) left when uniform rows and columns are trimmed from each
    side (the whole picture when nothing is uniform, or everything is)."""
    height, width = pixels.shape[:2]
    rows = _uniform(pixels, rules.uniform_spread)
    cols = _uniform(pixels.transpose(1, 0, 2), rules.uniform_spread)
    if rows.all() or cols.all():
        return 0, 0, width, height
    y0 = int(np.argmin(rows))
    y1 = height - int(np.argmin(rows[::-1]))
    x0 = int(np.argmin(cols))
    x1 = width - int(np.argmin(cols[::-1]))
    return x0, y0, x1, y1


def _cuts(pixels: Pixels, rules: ProposalRules) -> list[int]:
    """Positions (columns of ``pixels``) of straight vertical seams or gutters inside."""
    width = pixels.shape[1]
    # A cut at x falls between columns x - 1 and x: only 1 .. width - 1 are inside.
    lo = max(1, round(width * rules.min_tile))
    hi = min(width - 1, round(width * (1 - rules.min_tile)))
    if hi <= lo:
        return []
    step = np.abs(np.diff(pixels, axis=1)).mean(axis=-1)  # rows x (width - 1)
    seam = (step >= rules.seam_step).mean(axis=0) >= rules.seam_share  # between x and x+1
    columns = pixels.transpose(1, 0, 2)
    gutter = _uniform(columns, rules.uniform_spread)
    found: list[int] = []
    for x in range(lo, hi):
        if seam[x - 1]:
            found.append(x)
    # A gutter: a run of uniform columns inside the picture with content on both sides.
    x = lo
    while x < hi:
        if gutter[x]:
            end = x
            while end + 1 < width and gutter[end + 1]:
                end += 1
            start = x
            while start - 1 >= 0 and gutter[start - 1]:
                start -= 1
            if start > 0 and end < width - 1:
                found.append((start + end + 1) // 2)
            x = end + 1
        else:
            x += 1
    return _spaced(sorted(set(found)), round(width * rules.min_tile), width)


def _spaced(cuts: Sequence[int], gap: int, width: int) -> list[int]:
    """Cuts at least ``gap`` apart and from either edge (the first of a close pair)."""
    kept: list[int] = []
    for cut in cuts:
        if cut - (kept[-1] if kept else 0) >= gap and width - cut >= gap:
            kept.append(cut)
    return kept


def tiles(pixels: Pixels, rules: ProposalRules) -> list[tuple[int, int, int, int]]:
    """A collage's tiles (x0, y0, x1, y1), each trimmed of its own uniform border; none
    when no straight line splits the picture."""
    height, width = pixels.shape[:2]
    xs = [0, *_cuts(pixels, rules), width]
    ys = [0, *_cuts(pixels.transpose(1, 0, 2), rules), height]
    cells = (len(xs) - 1) * (len(ys) - 1)
    if cells < 2 or cells > rules.max_tiles:
        return []
    out = []
    for top, bottom in itertools.pairwise(ys):
        for left, right in itertools.pairwise(xs):
            x0, y0, x1, y1 = content_box(pixels[top:bottom, left:right], rules)
            out.append((left + x0, top + y0, left + x1, top + y1))
    return out


def proposals(rgb: npt.NDArray[np.uint8], rules: ProposalRules) -> tuple[Region, ...]:
    """The content box (where a border was trimmed) and a collage's tiles, as regions in
    fractions of the picture; empty for a picture with neither."""
    pixels = measure_copy(rgb)
    height, width = pixels.shape[:2]
    found: list[Region] = []
    x0, y0, x1, y1 = content_box(pixels, rules)
    if (x1 - x0) * (y1 - y0) <= (1 - rules.min_border) * width * height:
        found.append(Region("content", x0 / width, y0 / height, x1 / width, y1 / height))
    inner = pixels[y0:y1, x0:x1]
    for number, (a, b, c, d) in enumerate(tiles(inner, rules)):
        found.append(
            Region(
                f"tile{number}",
                (x0 + a) / width,
                (y0 + b) / height,
                (x0 + c) / width,
                (y0 + d) / height,
            )
        )
    return tuple(found)
