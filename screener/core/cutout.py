"""The cut-out: a figure lifted off a smooth background. Pure (numpy in, numpy out).

A character drawn anew is usually set on a background of its own (a plain colour, a
gradient), while its references are cut out on white or transparent. A whole-image
descriptor of the query then describes the background as much as the figure. Where the
background is smooth, it is modelled from the picture's border (a quadratic surface per
channel, fitted by least squares), every pixel that departs from it is taken for the
figure, and the figure is set on white in a square of its own: the query as its
references were drawn.

Busy backgrounds (a photograph) do not fit a smooth surface; the border's own residual
says so and no cut-out is made, so the check is what it was without one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# The long side the background is modelled at; the mask is brought back to full size.
MEASURE_SIDE = 128


@dataclass(frozen=True)
class CutoutRules:
    """When a background counts as smooth, and what counts as the figure."""

    # The border ring the background is fitted on, as a share of the shorter side.
    border: float = 0.06
    # A pixel is the figure where it departs from the fitted background by this much
    # (Euclidean over RGB, 0-255 scale) ...
    min_step: float = 40.0
    # ... and by this many times the border's own 90th-percentile residual.
    noise_factor: float = 2.5
    # No cut-out where the background's 90th-percentile residual on the border exceeds
    # this (not smooth), or where less than ``background_share`` of the border is
    # background at all.
    max_border_noise: float = 24.0
    background_share: float = 0.5
    # The figure must cover this share of the picture, at least and at most.
    min_share: float = 0.02
    max_share: float = 0.85
    # White margin around the figure in its square, as a share of the figure's side.
    margin: float = 0.08

    def __post_init__(self) -> None:
        if not 0 < self.border < 0.5:
            raise ValueError("cut-out border must be between 0 and 0.5 of the side")
        if not 0 < self.min_share < self.max_share <= 1:
            raise ValueError("cut-out shares must satisfy 0 < min_share < max_share <= 1")
        if self.min_step <= 0 or self.noise_factor <= 0 or self.max_border_noise <= 0:
            raise ValueError("cut-out steps and noise limits must be positive")
        if not 0 < self.background_share <= 1:
            raise ValueError("cut-out background_share must be in (0, 1]")
        if not 0 <= self.margin < 1:
            raise ValueError("cut-out margin must be in [0, 1)")


def _surface(height: int, width: int) -> npt.NDArray[np.float64]:
    """The quadratic basis (1, x, y, xy, x², y²) at every pixel, shape (H, W, 6)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    x /= max(1, width - 1)
    y /= max(1, height - 1)
    return np.stack([np.ones_like(x), x, y, x * y, x * x, y * y], axis=-1)


def _least_squares(
    basis: npt.NDArray[np.float64], values: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The coefficients (6, 3) that fit ``values`` (N, 3) on ``basis`` (N, 6) best, by the
    normal equations: six unknowns over coordinates in [0, 1] are well conditioned, and a
    6 x 6 solve costs nothing beside an SVD of the N rows (numpy's lstsq)."""
    gram = basis.T @ basis + 1e-9 * np.eye(basis.shape[1])
    solved: npt.NDArray[np.float64] = np.linalg.solve(gram, basis.T @ values).astype(np.float64)
    return solved


def _fit(
    rgb: npt.NDArray[np.uint8], rules: CutoutRules
) -> tuple[npt.NDArray[np.float64], float] | None:
    """The background surface's coefficients (6, 3) and the step a figure's pixel must
    make; None where the background is not smooth."""
    height, width = rgb.shape[:2]
    if height < 8 or width < 8:
        return None
    pixels = rgb.astype(np.float64)
    band = max(2, round(rules.border * min(height, width)))
    ring = np.zeros((height, width), dtype=bool)
    ring[:band] = ring[-band:] = True
    ring[:, :band] = ring[:, -band:] = True
    basis = _surface(height, width)
    # Fitted twice: the second time without the border pixels the first fit left far
    # off (a figure that reaches the edge), so the surface is the background's alone.
    keep = ring
    for _ in range(2):
        coefficients = _least_squares(basis[keep], pixels[keep])
        residual = np.sqrt(((pixels - basis @ coefficients) ** 2).sum(axis=-1))
        keep = ring & (residual < max(rules.min_step, 2.0 * float(np.median(residual[ring]))))
        if keep.sum() < rules.background_share * ring.sum():
            return None
    noise = float(np.percentile(residual[keep], 90))
    if noise > rules.max_border_noise:
        return None
    return coefficients, max(rules.min_step, rules.noise_factor * noise)


def figure_mask(
    rgb: npt.NDArray[np.uint8], rules: CutoutRules = CutoutRules()
) -> npt.NDArray[np.bool_] | None:
    """Where the figure is (H, W) on a smooth background; None where the background is
    not smooth or the figure is too small or too large to be one. The background is
    modelled at :data:`MEASURE_SIDE` and compared with the picture at full size."""
    height, width = rgb.shape[:2]
    step = max(1, int(np.ceil(max(height, width) / MEASURE_SIDE)))
    fitted = _fit(rgb[::step, ::step], rules)
    if fitted is None:
        return None
    coefficients, threshold = fitted
    background = _surface(height, width) @ coefficients
    residual = np.sqrt(((rgb.astype(np.float64) - background) ** 2).sum(axis=-1))
    mask: npt.NDArray[np.bool_] = residual > threshold
    share = float(mask.mean())
    if not rules.min_share <= share <= rules.max_share:
        return None
    return mask


def _box(mask: npt.NDArray[np.bool_]) -> tuple[int, int, int, int] | None:
    """The mask's box (left, top, right, bottom), ignoring rows and columns that hold
    only a stray pixel or two."""
    rows = np.nonzero(mask.sum(axis=1) >= 2)[0]
    cols = np.nonzero(mask.sum(axis=0) >= 2)[0]
    if rows.size == 0 or cols.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


@dataclass(frozen=True)
class Cutout:
    """The figure on white in a square (``pixels``, H' x W' x 3 uint8), and where it
    was: ``box`` (left, top, right, bottom) in fractions of the picture."""

    pixels: npt.NDArray[np.uint8]
    box: tuple[float, float, float, float]


def cutout(rgb: npt.NDArray[np.uint8], rules: CutoutRules = CutoutRules()) -> Cutout | None:
    """The figure of ``rgb`` (H x W x 3 uint8), or None where no figure stands out of a
    smooth background. The cost grows with the pixels: pass a picture reduced to the
    size its user needs (the semantic tower's input is 224 px)."""
    mask = figure_mask(rgb, rules)
    box = None if mask is None else _box(mask)
    if mask is None or box is None:
        return None
    height, width = rgb.shape[:2]
    left, top, right, bottom = box
    figure = np.where(mask[top:bottom, left:right, None], rgb[top:bottom, left:right], 255)
    side = max(bottom - top, right - left)
    pad = round(side * rules.margin)
    square = np.full((side + 2 * pad, side + 2 * pad, 3), 255, dtype=np.uint8)
    y = pad + (side - (bottom - top)) // 2
    x = pad + (side - (right - left)) // 2
    square[y : y + bottom - top, x : x + right - left] = figure
    return Cutout(square, (left / width, top / height, right / width, bottom / height))
