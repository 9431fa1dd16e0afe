"""The outlines drawn over a match's two pictures."""

from __future__ import annotations

import pytest

from screener.service.console.geometry import Point, clip, outlines


def flat(points: list[Point] | list[tuple[int, int]]) -> list[float]:
    return [float(v) for point in sorted(points) for v in point]


def test_a_crop_of_the_work_outlines_all_of_the_output_and_the_middle_of_the_work() -> None:
    # The reference's corners fall at twice the output's size around it: a centre crop.
    in_query, in_reference = outlines([(-100, -75), (300, -75), (300, 225), (-100, 225)], 200, 150)
    assert sorted(in_query) == sorted([(0.0, 0.0), (200.0, 0.0), (200.0, 150.0), (0.0, 150.0)])
    assert flat(in_reference) == pytest.approx(
        flat([(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)])
    )


def test_a_work_pasted_into_the_output_outlines_its_place_and_all_of_the_work() -> None:
    quad = [(50.0, 40.0), (150.0, 40.0), (150.0, 110.0), (50.0, 110.0)]
    in_query, in_reference = outlines(quad, 200, 150)
    assert sorted(in_query) == sorted(quad)
    assert flat(in_reference) == pytest.approx(flat([(0, 0), (1, 0), (1, 1), (0, 1)]))


def test_clip_drops_what_lies_outside() -> None:
    assert clip([(300.0, 300.0), (400.0, 300.0), (400.0, 400.0)], 100, 100) == []
    triangle = clip([(-50.0, 50.0), (50.0, -50.0), (50.0, 50.0)], 100, 100)
    assert all(0 <= x <= 100 and 0 <= y <= 100 for x, y in triangle)
    assert len(triangle) >= 3
