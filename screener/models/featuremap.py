"""Many region descriptors from one model call: a GeM head applied to windows of a feature map.

SSCD is a convolutional trunk, generalised-mean (GeM) pooling over the last feature map,
a linear projection and L2 normalisation. Cropping a region and running the whole model
again costs a full model call per region; pooling the one feature map of the whole query
over a window and applying only the head costs a few thousand multiply-adds. So a query
gets hundreds of windows (several scales, stride one cell) for about the cost of one call,
each comparable with a reference's whole-image descriptor: a work pasted small into a
new picture, or one tile of a collage, fills some window well even when it fills no
fixed region. Window sums come from a summed-area table of the map raised to GeM's power.

Pure numpy: the graph surgery that exposes the map lives with the model (`screener.models.sscd`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# A window in feature-map cells: (top, left, bottom, right), bottom and right exclusive.
Cells = tuple[int, int, int, int]


@dataclass(frozen=True)
class GemHead:
    """SSCD's head: GeM pooling (power ``p``, values clipped below at ``eps``), then
    ``weight @ pooled + bias``, then L2 normalisation."""

    weight: npt.NDArray[np.float32]  # (dim, channels)
    bias: npt.NDArray[np.float32]  # (dim,)
    p: float
    eps: float

    def project(self, pooled: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Pooled rows (n, channels) to unit descriptors (n, dim)."""
        out = pooled @ self.weight.T + self.bias
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        result: npt.NDArray[np.float32] = (out / norms).astype(np.float32)
        return result

    def pool(
        self, fmap: npt.NDArray[np.float32], windows: Sequence[Cells]
    ) -> npt.NDArray[np.float32]:
        """GeM of a (channels, height, width) map over each window: (len(windows), channels)."""
        if fmap.ndim != 3:
            raise ValueError(f"a feature map is (channels, height, width), not {fmap.shape}")
        if not windows:
            return np.zeros((0, fmap.shape[0]), dtype=np.float32)
        powered = np.maximum(fmap.astype(np.float64), self.eps) ** self.p
        channels, height, width = powered.shape
        table = np.zeros((channels, height + 1, width + 1), dtype=np.float64)
        table[:, 1:, 1:] = powered.cumsum(axis=1).cumsum(axis=2)
        cells = np.asarray(windows, dtype=np.int64)
        top, left, bottom, right = cells.T
        if (top < 0).any() or (left < 0).any() or (bottom > height).any() or (right > width).any():
            raise ValueError(f"a window lies outside the {height}x{width} map")
        if ((bottom <= top) | (right <= left)).any():
            raise ValueError("a window is empty")
        sums = (
            table[:, bottom, right]
            - table[:, top, right]
            - table[:, bottom, left]
            + table[:, top, left]
        )
        means = np.maximum(sums, 0.0) / ((bottom - top) * (right - left))
        pooled: npt.NDArray[np.float32] = (means.T ** (1.0 / self.p)).astype(np.float32)
        return pooled

    def describe(
        self, fmap: npt.NDArray[np.float32], windows: Sequence[Cells]
    ) -> npt.NDArray[np.float32]:
        """Unit descriptors of ``windows`` of one map, one row each."""
        return self.project(self.pool(fmap, windows))


def windows(height: int, width: int, fractions: Sequence[float]) -> list[Cells]:
    """Every window of a ``height`` x ``width`` map whose sides are one of ``fractions`` of
    the map's sides (the query's aspect) or, square, of its long side, at a stride of one
    cell; the whole map first. Windows of one cell or less a side are left out: a single
    cell's receptive field is most of a small map, and it matches too much."""
    if height < 1 or width < 1:
        raise ValueError(f"a feature map of {height}x{width} cells has no windows")
    found: dict[Cells, None] = {(0, 0, height, width): None}
    long_side = max(height, width)
    for fraction in sorted(set(fractions), reverse=True):
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"a window fraction lies in (0, 1], not {fraction}")
        sizes = {
            (min(height, round(fraction * height)), min(width, round(fraction * width))),
            (min(height, round(fraction * long_side)), min(width, round(fraction * long_side))),
        }
        for rows, cols in sorted(sizes):
            if rows < 2 or cols < 2:
                continue
            for top in range(height - rows + 1):
                for left in range(width - cols + 1):
                    found.setdefault((top, left, top + rows, left + cols), None)
    return list(found)
