"""A character's colours: a histogram of its figure's pixels. Pure (numpy in, numpy out).

A character drawn in a new pose keeps its colours (the fur, the coat, the emblem), while
another creature of its kind drawn in the same style often does not. The histogram counts
the figure's pixels only: a reference's opaque pixels, or a query's figure lifted off a
smooth background (`screener.core.cutout`), or the whole picture where no figure stands
out. Two histograms are compared by their Bhattacharyya coefficient (1: the same colours
in the same shares, 0: no colour in common).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from screener.core.cutout import figure_mask

# Levels per RGB channel: 8 x 8 x 8 cells of 32 levels each.
LEVELS = 8


def colours(
    rgb: npt.NDArray[np.uint8], mask: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.float32]:
    """The share of ``rgb``'s pixels (H x W x 3) in each colour cell (LEVELS ** 3),
    counting only where ``mask`` is set (None: every pixel); all zeros where none is."""
    pixels = rgb.reshape(-1, 3) if mask is None else rgb[mask]
    cells = (pixels.astype(np.int64) * LEVELS) // 256
    index = (cells[:, 0] * LEVELS + cells[:, 1]) * LEVELS + cells[:, 2]
    counts = np.bincount(index, minlength=LEVELS**3).astype(np.float32)
    total = float(counts.sum())
    return counts / total if total else counts


def figure_colours(
    rgb: npt.NDArray[np.uint8], alpha: npt.NDArray[np.uint8] | None = None
) -> npt.NDArray[np.float32]:
    """The colours of the picture's figure: its opaque pixels where it has an alpha
    channel, else the figure lifted off a smooth background, else the whole picture."""
    if alpha is not None:
        opaque = alpha > 127
        if opaque.any():
            return colours(rgb, opaque)
    return colours(rgb, figure_mask(rgb))


def likeness(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """The Bhattacharyya coefficient of two histograms (0 to 1)."""
    return float(np.sqrt(a.astype(np.float64) * b.astype(np.float64)).sum())
