"""The fixed set of regions fingerprinted besides the whole image. Pure geometry.

A protected work pasted into a larger picture fills only part of it, and a crop of a work
is only part of the reference; fingerprinting a 2x2 grid and a centre crop on both sides
lets whole-image signals see those parts. Regions overlap a little so a work straddling a
grid line still falls mostly inside one cell.
"""

from __future__ import annotations

from dataclasses import dataclass

WHOLE = "whole"
# A window of the query's feature map (screener/models/featuremap.py), named by its box.
WINDOW = "window:"
# The figure lifted off a smooth background (screener/core/cutout.py), named by its box.
FIGURE = "figure:"
PLACED = "placed:"


@dataclass(frozen=True)
class Region:
    """A named box in fractions of the image's width and height."""

    name: str
    left: float
    top: float
    right: float
    bottom: float

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The box in pixels, at least one pixel each way."""
        x0, y0 = round(self.left * width), round(self.top * height)
        x1 = max(x0 + 1, round(self.right * width))
        y1 = max(y0 + 1, round(self.bottom * height))
        return x0, y0, x1, y1


_OVERLAP = 0.1
GRID = tuple(
    Region(
        f"grid{row}{col}",
        max(0.0, col * 0.5 - _OVERLAP / 2),
        max(0.0, row * 0.5 - _OVERLAP / 2),
        min(1.0, (col + 1) * 0.5 + _OVERLAP / 2),
        min(1.0, (row + 1) * 0.5 + _OVERLAP / 2),
    )
    for row in range(2)
    for col in range(2)
)
CENTRE = Region("centre", 0.2, 0.2, 0.8, 0.8)
WHOLE_REGION = Region(WHOLE, 0.0, 0.0, 1.0, 1.0)


# The fixed cells every picture is cut into (not the whole, nor anything proposed).
FIXED = frozenset(r.name for r in (*GRID, CENTRE))


def regions(enabled: bool) -> tuple[Region, ...]:
    """The whole image first, then the grid and centre crop when regions are enabled."""
    return (WHOLE_REGION, *GRID, CENTRE) if enabled else (WHOLE_REGION,)


def _boxed(prefix: str, box: tuple[float, float, float, float]) -> Region:
    left, top, right, bottom = box
    return Region(f"{prefix}{left:.3f},{top:.3f},{right:.3f},{bottom:.3f}", *box)


def window(box: tuple[float, float, float, float]) -> Region:
    """A feature-map window as a region, its box (fractions) in its name."""
    return _boxed(WINDOW, box)


def figure(box: tuple[float, float, float, float]) -> Region:
    """A figure's cut-out as a region, its box (fractions) in its name."""
    return _boxed(FIGURE, box)


def placed(box: tuple[float, float, float, float]) -> Region:
    """Where a work's own pixels put it in the query (`screener.matching.placed`), its box
    (fractions) in its name."""
    return _boxed(PLACED, box)


def is_window(name: str) -> bool:
    return name.startswith(WINDOW)


def parse_window(name: str) -> Region | None:
    """The region a window's, a figure's or a placed box's name (:func:`window`,
    :func:`figure`, :func:`placed`) describes; None for any other name."""
    prefix = next((p for p in (WINDOW, FIGURE, PLACED) if name.startswith(p)), None)
    if prefix is None:
        return None
    try:
        left, top, right, bottom = (float(v) for v in name[len(prefix) :].split(","))
    except ValueError:
        return None
    return Region(name, left, top, right, bottom)
