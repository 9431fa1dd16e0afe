"""Where a placement puts a work, as the reference's corners in the query's pixels
(`screener.matching.placed.quad_of` and `quad_within`): through them the query is brought
into the reference's frame and agrees with it cell by cell."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from screener.matching import placed
from screener.models import alignment
from tests import needs
from tests.models.test_alignment import badge, square

needs.module("cv2", "local")


def _photo(size: int, seed: int) -> Image.Image:
    noise = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(noise).filter(ImageFilter.GaussianBlur(3))


def test_a_pasted_works_box_is_its_corners_in_the_query() -> None:
    work = badge("LOKA")
    canvas = _photo(512, 1)
    canvas.paste(work.resize((160, 160)), (300, 60))
    box = (300 / 512, 60 / 512, 460 / 512, 220 / 512)
    quad = placed.quad_of(box, canvas.size)
    assert np.allclose(quad, [(300, 60), (460, 60), (460, 220), (300, 220)])
    query = alignment.grey(canvas)
    agreed = alignment.through(square(work), query, quad)
    assert agreed is not None and agreed > 0.7  # the outlines resampled twice
    other = alignment.through(square(badge("MOTE")), query, quad)
    assert other is None or other < 0.4


def test_a_crop_is_met_where_it_sits_in_the_work() -> None:
    work = badge("LOKA")  # 384 px: the crop shows (96, 40)-(336, 280) of it
    crop = work.crop((96, 40, 336, 280)).resize((300, 300))
    box = (96 / 384, 40 / 384, 336 / 384, 280 / 384)
    quad = placed.quad_within(box, crop.size)
    # The work's corners lie outside the crop: 96 px of the work left of it, at 300/240.
    assert np.allclose(quad[0], (-96 * 300 / 240, -40 * 300 / 240), atol=1e-3)
    agreed = alignment.through(square(work), alignment.grey(crop), quad)
    assert agreed is not None and agreed > 0.8
    # Through the crop as if it were the whole work, nothing lines up.
    whole = alignment.through(
        square(work), alignment.grey(crop), placed.quad_of((0, 0, 1, 1), crop.size)
    )
    assert whole is None or whole < 0.4


def test_settling_finds_the_frame_a_placement_missed_by_a_few_pixels() -> None:
    work = badge("LOKA")
    canvas = _photo(512, 2)
    canvas.paste(work.resize((150, 150)), (120, 200))
    query = alignment.grey(canvas)
    off = placed.quad_of((123 / 512, 203 / 512, 276 / 512, 356 / 512), canvas.size)
    missed = alignment.through(square(work), query, off)
    settled = alignment.settled(square(work), query, off)
    assert settled is not None and settled > 0.8
    assert missed is None or settled > missed + 0.1
    look_alike = alignment.settled(square(badge("MOTE")), query, off)
    assert look_alike is None or look_alike < 0.4
