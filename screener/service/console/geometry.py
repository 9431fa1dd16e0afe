"""Outlines to draw over the two pictures of a match (display only).

Local-feature verification reports ``quad``: where the reference's four corners fall in
the query. Clipped to the query, that is the copied part of the output; the query's
corners mapped back through the same homography, clipped to the reference, are the part
of the work that was copied. Both are needed when the output is a crop of the work (the
quad then reaches outside the output) or the work a small part of the output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Point = tuple[float, float]
UNIT = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))


def homography(src: Sequence[Point], dst: Sequence[Point]) -> np.ndarray | None:
    """The 3x3 projective map taking four ``src`` points to four ``dst`` points."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    try:
        h = np.linalg.solve(np.array(rows, dtype=float), np.array(rhs, dtype=float))
    except np.linalg.LinAlgError:
        return None
    matrix: np.ndarray = np.append(h, 1.0).reshape(3, 3)
    return matrix


def apply(matrix: np.ndarray, points: Sequence[Point]) -> list[Point]:
    mapped = []
    for x, y in points:
        u, v, w = matrix @ np.array([x, y, 1.0])
        mapped.append((float(u / w), float(v / w)) if abs(w) > 1e-12 else (float("inf"),) * 2)
    return mapped


def clip(polygon: Sequence[Point], width: float, height: float) -> list[Point]:
    """The part of a polygon inside [0, width] x [0, height] (Sutherland-Hodgman, one
    rectangle edge at a time)."""
    points = [p for p in polygon if np.isfinite(p[0]) and np.isfinite(p[1])]
    for axis, bound, low in ((0, 0.0, True), (0, width, False), (1, 0.0, True), (1, height, False)):
        if not points:
            break

        def inside(p: Point, axis: int = axis, bound: float = bound, low: bool = low) -> bool:
            return p[axis] >= bound if low else p[axis] <= bound

        kept: list[Point] = []
        for n, current in enumerate(points):
            previous = points[n - 1]
            if inside(current):
                if not inside(previous):
                    kept.append(_cross(previous, current, axis, bound))
                kept.append(current)
            elif inside(previous):
                kept.append(_cross(previous, current, axis, bound))
        points = kept
    return points


def _cross(a: Point, b: Point, axis: int, bound: float) -> Point:
    """Where the segment a-b meets the line ``coordinate[axis] == bound``."""
    t = (bound - a[axis]) / (b[axis] - a[axis])
    other = 1 - axis
    value = a[other] + t * (b[other] - a[other])
    return (bound, value) if axis == 0 else (value, bound)


def outlines(quad: Sequence[Point], width: int, height: int) -> tuple[list[Point], list[Point]]:
    """(outline in the query, in pixels; outline in the reference, in fractions)."""
    in_query = clip(quad, width, height)
    matrix = homography(UNIT, quad)
    if matrix is None:
        return in_query, list(UNIT)
    try:
        back = apply(np.linalg.inv(matrix), [(0, 0), (width, 0), (width, height), (0, height)])
    except np.linalg.LinAlgError:
        return in_query, list(UNIT)
    return in_query, clip(back, 1.0, 1.0)
