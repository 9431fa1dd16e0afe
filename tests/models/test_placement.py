"""Placing a work in a query by its own pixels (`screener.models.placement`): the box found,
the masked crop, and what the search refuses."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from screener.core.samples import drawing, scene
from screener.models import placement
from tests import needs

needs.module("cv2", "local")


def _template(work: Image.Image) -> placement.Template:
    alpha = work.getchannel("A") if work.mode == "RGBA" else None
    flat = Image.new("RGB", work.size, (255, 255, 255))
    flat.paste(work.convert("RGB"), mask=alpha)
    return placement.template_of(flat, alpha)


def _pasted(work: Image.Image, side: int, at: tuple[int, int], seed: int) -> Image.Image:
    canvas = scene(seed, size=(512, 448))
    small = work.resize((side, side))
    canvas.paste(small.convert("RGB"), at, small.getchannel("A") if small.mode == "RGBA" else None)
    return canvas


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


@pytest.mark.parametrize(("seed", "side", "at"), [(1, 128, (300, 40)), (2, 160, (20, 250))])
def test_a_transparent_work_pasted_small_is_placed_where_it_is(
    seed: int, side: int, at: tuple[int, int]
) -> None:
    work = drawing(seed, transparent=True)
    query = _pasted(work, side, at, seed + 40)
    found = placement.place(query, _template(work))
    assert found is not None
    truth = (at[0] / 512, at[1] / 448, (at[0] + side) / 512, (at[1] + side) / 448)
    assert _overlap(found.box, truth) > 0.8


def test_an_opaque_work_is_placed_too_and_searched_unmasked() -> None:
    work = scene(7, size=(200, 150))
    template = _template(work)
    assert template.alpha is None
    canvas = scene(8, size=(512, 512))
    canvas.paste(work.resize((160, 120)), (200, 300))
    found = placement.place(canvas, template)
    assert found is not None
    assert _overlap(found.box, (200 / 512, 300 / 512, 360 / 512, 420 / 512)) > 0.8


def test_an_alpha_that_covers_everything_is_dropped() -> None:
    work = scene(9, size=(100, 100))
    assert placement.template_of(work, Image.new("L", work.size, 255)).alpha is None


def test_the_masked_crop_keeps_the_work_and_whitens_the_photo_behind_it() -> None:
    work = drawing(3, transparent=True)
    query = _pasted(work, 192, (100, 120), 43)
    template = _template(work)
    found = placement.place(query, template)
    assert found is not None
    crop = placement.masked_crop(query, found, template)
    pixels = np.asarray(crop, dtype=np.int16)
    assert template.alpha is not None
    alpha = np.asarray(template.alpha.resize(crop.size, Image.Resampling.BILINEAR))
    outside, inside = alpha == 0, alpha == 255
    assert outside.sum() > 1000
    assert (pixels[outside] == 255).all()
    # Inside the alpha the crop is the work as registered (flattened on white).
    reference = np.asarray(template.rgb.resize(crop.size), dtype=np.int16)
    assert np.median(np.abs(pixels[inside] - reference[inside])) < 24


def test_a_crop_of_a_reference_is_found_within_it() -> None:
    work = scene(21, size=(256, 192))
    reference = placement.template_of(work, None)
    query = placement.template_of(work.crop((60, 40, 220, 160)).resize((320, 240)), None)
    found = placement.within(query, reference)
    assert found is not None
    pixels, where = found
    assert _overlap(where.box, (60 / 256, 40 / 192, 220 / 256, 160 / 192)) > 0.85
    assert pixels.size == placement.cut(work, where).size


def test_the_coarse_score_ranks_the_pasted_work_above_others() -> None:
    works = [drawing(s, transparent=True) for s in (11, 12, 13, 14)]
    query = placement.query_of(_pasted(works[2], 150, (260, 200), 50))
    scores = []
    for work in works:
        found = placement.coarse(query, _template(work))
        assert found is not None
        scores.append(found.score)
    assert int(np.argmax(scores)) == 2


def test_a_template_bigger_than_every_size_tried_fits_nowhere() -> None:
    tiny = scene(5, size=(40, 30))
    params = placement.PlaceParams(coarse_side=16, fine_side=16, smallest=0.2, largest=0.3)
    assert placement.place(tiny, _template(drawing(4, transparent=True)), params) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"coarse_side": 8}, "coarse_side"),
        ({"coarse_side": 200, "fine_side": 100}, "coarse_side"),
        ({"smallest": 0.5, "largest": 0.4}, "smallest"),
        ({"steps": 0}, "step"),
        ({"refine": ()}, "refine"),
        ({"method": "sqdiff"}, "method"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        placement.PlaceParams(**kwargs)  # type: ignore[arg-type]
