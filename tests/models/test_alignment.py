"""Aligned agreement (screener/models/alignment.py): a copy agrees with its reference cell
by cell however it was edited; a same-badge look-alike with other letters does not."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from screener.models import alignment
from tests import needs

needs.module("cv2", "local")


def badge(word: str, size: int = 384) -> Image.Image:
    """A round badge with a star, the word's first two letters inside and the word below
    (as the accuracy suite draws logos, in Pillow's own font): the same badge with another
    word is the look-alike the measure must tell apart."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((24, 16, size - 24, 280), fill=(170, 180, 225), outline=(40, 90, 170), width=9)
    r, cx, cy = 26, size // 2, 70
    star = [
        (cx + (r if i % 2 == 0 else r / 2.5) * math.cos(a),
         cy + (r if i % 2 == 0 else r / 2.5) * math.sin(a))
        for i, a in enumerate(math.radians(i * 36 - 90) for i in range(10))
    ]  # fmt: skip
    draw.polygon(star, fill=(40, 90, 170))
    draw.text((cx, 160), word[:2], fill=(15, 15, 30), font=ImageFont.load_default(110), anchor="mm")
    draw.text((cx, 330), word, fill=(40, 90, 170), font=ImageFont.load_default(44), anchor="mm")
    return image


def square(image: Image.Image) -> alignment.Square:
    return alignment.Square(alignment.thumbnail(image))


def whole(query: Image.Image, reference: Image.Image) -> float | None:
    return alignment.best_agreement([(square(reference), [])], alignment.grey(query))


def test_a_copy_agrees_under_photometric_edits() -> None:
    work = badge("LOKA")
    for edited in (
        work,
        work.filter(ImageFilter.GaussianBlur(3)),
        work.resize((256, 256)),
        Image.eval(work, lambda v: min(255, int(v * 0.7 + 60))),
    ):
        value = whole(edited, work)
        assert value is not None and value > 0.8


def test_a_same_badge_with_other_letters_does_not() -> None:
    work = badge("LOKA")
    copy = whole(work.filter(ImageFilter.GaussianBlur(3)), work)
    assert copy is not None and copy > 0.9
    for other in ("SOVI", "MOTE", "DYRA", "LYKA"):
        lookalike = whole(badge(other), work)
        assert lookalike is not None
        assert lookalike < 0.7 and copy - lookalike > 0.3


def test_turns_and_flips_are_found_without_keypoints() -> None:
    work = badge("RAZE")
    for turned in (work.transpose(Image.Transpose.FLIP_LEFT_RIGHT), work.rotate(90)):
        value = whole(turned, work)
        assert value is not None and value > 0.9
        # The first view is the query as it is: there the turned badge does not agree.
        first = alignment.turns(alignment.grey(turned))[0]
        assert (alignment.agreement(square(work), first) or 0.0) < value - 0.3


def _pasted(work: Image.Image) -> tuple[Image.Image, list[tuple[float, float]]]:
    """The work turned by 15 degrees and pasted small into a grey scene, and its corners
    there."""
    scene = Image.new("RGB", (640, 480), (90, 100, 95))
    small = work.resize((160, 160))
    turned = small.rotate(15, expand=True, fillcolor=(90, 100, 95))
    left, top = 300, 120
    scene.paste(turned, (left, top))
    angle = np.radians(-15)  # PIL turns counter-clockwise on screen
    centre = np.array([left + turned.width / 2, top + turned.height / 2])
    corners = np.array([[-80, -80], [80, -80], [80, 80], [-80, 80]], dtype=np.float64)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    quad = [(float(x), float(y)) for x, y in corners @ rotation.T + centre]
    return scene, quad


def test_a_verified_quad_brings_a_pasted_copy_into_the_reference_frame() -> None:
    work = badge("KALU")
    scene, quad = _pasted(work)
    query = alignment.grey(scene)
    through = alignment.best_agreement([(square(work), [quad])], query)
    alone = alignment.best_agreement([(square(work), [])], query)
    assert through is not None and through > 0.8
    assert alone is None  # no view of the whole scene lines up with the badge
    lookalike, _ = _pasted(badge("KORI"))
    other = alignment.best_agreement([(square(work), [quad])], alignment.grey(lookalike))
    assert other is not None and other < through - 0.3


def test_a_flat_reference_measures_nothing() -> None:
    flat = Image.new("RGB", (200, 200), (120, 130, 140))
    assert whole(badge("LOKA"), flat) is None


@pytest.mark.parametrize(
    "quad",
    [[(0.0, 0.0), (10.0, 0.0)], [(0.0, 0.0), (float("nan"), 0.0), (5.0, 5.0), (0.0, 5.0)]],
)
def test_a_malformed_quad_is_skipped(quad: list[tuple[float, float]]) -> None:
    work = badge("LOKA")
    assert alignment.warp(alignment.grey(work), quad) is None
    assert alignment.best_agreement([(square(work), [quad])], alignment.grey(work)) == whole(
        work, work
    )


def test_frames_that_do_not_line_up_measure_nothing() -> None:
    # The work pasted small and turned, with no quad: no view lines up with the reference,
    # so nothing is measured (not a low agreement that would pass for a look-alike).
    work = badge("LOKA")
    scene, quad = _pasted(work)
    square_ = square(work)
    for view in alignment.turns(alignment.grey(scene)):
        assert alignment.agreement(square_, view) is None
    warped = alignment.warp(alignment.grey(scene), quad)
    assert warped is not None
    assert alignment.agreement(square_, *warped) is not None
    # Under a median of one half the same cells measure nothing; at or above it, their
    # low quantile.
    strict = alignment.AlignParams(min_median=1.01, sure_share=1.01)
    assert alignment.agreement(square_, *warped, params=strict) is None


def test_through_a_trusted_quad_a_look_alike_is_measured_whatever_the_median() -> None:
    # A median rule that nothing passes (as a badge with other letters fails the real one:
    # most of its structured cells are the letters): through a quad that enough verified
    # keypoints found, the low agreement is measured; through one found with fewer, or
    # with no quad, nothing is.
    work = badge("KALU")
    lookalike, quad = _pasted(badge("KORI"))
    query = alignment.grey(lookalike)
    strict = alignment.AlignParams(min_median=1.01, sure_share=1.01)
    trusted = strict.trusted_inliers
    refs = [(square(work), [quad])]
    measured = alignment.best_agreement(refs, query, strict, inliers=trusted)
    assert measured is not None and measured < 0.6
    assert alignment.best_agreement(refs, query, strict, inliers=trusted - 1) is None
    assert alignment.best_agreement([(square(work), [])], query, strict, inliers=trusted) is None
    # A copy through the same trusted quad agrees as it did.
    copy, _ = _pasted(work)
    agreed = alignment.best_agreement(refs, alignment.grey(copy), strict, inliers=trusted)
    assert agreed is not None and agreed > 0.8


def test_the_stacked_views_measure_what_each_view_alone_does() -> None:
    work = badge("LOKA")
    for query in (badge("LOKA").rotate(90), badge("MOTE"), badge("LOKA").filter(ImageFilter.BLUR)):
        views = alignment.turns(alignment.grey(query))
        stacked = alignment._scores(square(work), views, None, alignment.DEFAULT)
        alone = [alignment.agreement(square(work), view) for view in views]
        assert stacked == pytest.approx(alone, abs=1e-6)
        assert any(v is not None for v in alone)


def _sticker(other: bool = False) -> Image.Image:
    """A transparent drawing in light and dark parts (a character cut out); ``other``: its
    look-alike, the same face with other eyes and mouth."""
    art = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    draw = ImageDraw.Draw(art)
    draw.ellipse((30, 30, 226, 226), fill=(250, 230, 120, 255), outline=(30, 20, 10, 255), width=8)
    dark, red = (20, 20, 20, 255), (200, 40, 40, 255)
    if other:
        draw.ellipse((80, 90, 125, 125), fill=dark)
        draw.ellipse((135, 90, 180, 125), fill=dark)
        draw.rectangle((70, 160, 186, 175), fill=red)
    else:
        draw.rectangle((90, 80, 120, 140), fill=dark)
        draw.rectangle((140, 80, 170, 140), fill=dark)
        draw.polygon([(80, 170), (176, 170), (128, 205)], fill=red)
    return art


def _flattened(art: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    canvas = Image.new("RGB", art.size, colour)
    canvas.paste(art, mask=art.getchannel("A"))
    return canvas


def test_a_transparent_reference_is_compared_only_where_it_has_pixels() -> None:
    # Registered with transparency (flattened over white, as stored); a copy on black
    # turns the contrast around in the cells at the drawing's edge.
    art = _sticker()
    reference = alignment.square_of(_flattened(art, (255, 255, 255)), art.getchannel("A"))
    assert reference.opaque is not None
    for colour in ((0, 0, 0), (240, 140, 20), (20, 30, 90)):
        query = alignment.grey(_flattened(art, colour))
        masked = alignment.best_agreement([(reference, [])], query)
        assert masked is not None and masked > 0.9
    on_black = alignment.grey(_flattened(art, (0, 0, 0)))
    unmasked = alignment.best_agreement([(alignment.Square(reference.pixels), [])], on_black)
    assert unmasked is not None and unmasked < 0


def test_a_transparent_reference_is_composited_over_the_querys_plain_background() -> None:
    # On a plain background every cell is compared, the drawing's edge included, against
    # the reference composited over that background: a copy agrees fully, and the same face
    # with other eyes and a mouth does not.
    art = _sticker()
    reference = alignment.square_of(_flattened(art, (255, 255, 255)), art.getchannel("A"))
    for colour in ((0, 0, 0), (20, 30, 90), (240, 140, 20), (255, 255, 255)):
        views = alignment.turns(alignment.grey(_flattened(art, colour)))
        levels = alignment._backgrounds(reference, views, None, alignment.DEFAULT)
        assert levels is not None and not np.isnan(levels[0])
        assert abs(float(levels[0]) - float(np.mean(colour))) < 40  # its grey level
        copy = alignment.best_agreement([(reference, [])], views[0])
        assert copy is not None and copy > 0.99, colour
        other = alignment.grey(_flattened(_sticker(other=True), colour))
        look_alike = alignment.best_agreement([(reference, [])], other)
        assert look_alike is None or look_alike < 0.5, (colour, look_alike)


def test_over_a_busy_background_only_wholly_covered_cells_are_compared() -> None:
    art = _sticker()
    reference = alignment.square_of(_flattened(art, (255, 255, 255)), art.getchannel("A"))
    noise = np.random.default_rng(5).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    busy = Image.fromarray(noise).filter(ImageFilter.GaussianBlur(2))
    busy.paste(art, mask=art.getchannel("A"))
    views = alignment.turns(alignment.grey(busy))
    levels = alignment._backgrounds(reference, views, None, alignment.DEFAULT)
    assert levels is not None and np.isnan(levels).all()  # no plain background to use
    copy = alignment.best_agreement([(reference, [])], views[0])
    assert copy is not None and copy > 0.9
    # Opaque reference: no background is estimated at all.
    assert alignment._backgrounds(square(badge("LOKA")), views, None, alignment.DEFAULT) is None


def _cells_kept(share: float, seed: int = 0) -> tuple[Image.Image, Image.Image]:
    """A textured picture of 8 x 8 cells, and another in which only ``share`` of the cells
    are the same and the rest other texture."""
    rng = np.random.default_rng(seed)
    side = 256
    a = rng.integers(0, 256, (side // 8, side // 8), dtype=np.uint8)
    b = rng.integers(0, 256, (side // 8, side // 8), dtype=np.uint8)
    cells = rng.permutation(64)[: round(share * 64)]
    mask = np.zeros((8, 8), bool)
    mask.flat[cells] = True
    mask = np.kron(mask, np.ones((4, 4), bool))  # cell of 32 px = 4 texture blocks
    other = np.where(mask, a, b)
    nearest = Image.Resampling.NEAREST
    return (
        Image.fromarray(a).resize((side, side), nearest),
        Image.fromarray(other).resize((side, side), nearest),
    )


def test_a_frame_where_a_share_of_cells_agree_exactly_lines_up() -> None:
    # Most cells differ (the median is low), but a third agree exactly: that frame is
    # lined up (no misaligned frame agrees exactly anywhere), and the low agreement is
    # measured; with a fifth the same, nothing is.
    work, look_alike = _cells_kept(0.36)
    views = alignment.turns(alignment.grey(look_alike))
    (cells,) = alignment._measures(square(work), views[:1], None, alignment.DEFAULT)
    assert cells is not None and cells.median < alignment.DEFAULT.min_median
    assert cells.sure >= alignment.DEFAULT.sure_share
    measured = whole(look_alike, work)
    assert measured is not None and measured < 0.3
    _, fewer = _cells_kept(0.2)
    assert whole(fewer, work) is None


def _creature(belly: str = "disk") -> Image.Image:
    """Flat art whose body and belly are one grey level (green and red), with dark eyes
    and pale limbs: the belly's outline lives in colour only."""
    image = Image.new("RGB", (256, 256), (235, 250, 250))
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 60, 216, 236), fill=(90, 140, 120))
    if belly == "disk":
        draw.ellipse((90, 120, 166, 196), fill=(200, 88, 100))
    else:  # the look-alike: the same creature with a square belly, higher up
        draw.rectangle((70, 90, 186, 160), fill=(200, 88, 100))
    for x in (100, 140):
        draw.ellipse((x, 70, x + 16, 86), fill=(30, 20, 60))
    for box in ((10, 140, 40, 160), (216, 140, 246, 160), (80, 228, 100, 250)):
        draw.rectangle(box, fill=(250, 200, 200))
    return image


def _hue_shifted(image: Image.Image, turn: int) -> Image.Image:
    h, s, v = image.convert("HSV").split()
    return Image.merge("HSV", (h.point(lambda x: (x + turn) % 256), s, v)).convert("RGB")


def test_cells_are_compared_in_colour_through_a_verified_quad() -> None:
    work = _creature()
    reference = alignment.square_of(work, None)
    corners = ((0.0, 0.0), (256.0, 0.0), (256.0, 256.0), (0.0, 256.0))

    def through(query: Image.Image, coloured: bool) -> float | None:
        pixels = alignment.colour(query) if coloured else None
        grey = alignment.grey(query)
        return alignment.through(reference, grey, corners, lined_up=True, coloured=pixels)

    lookalike = _creature("square")
    assert (through(lookalike, False) or 0.0) > 0.8, "in grey the belly does not show"
    for turn in (0, 40, 90, 128):  # up to half the hue circle: every channel may turn over
        copy = _hue_shifted(work, turn)
        agreed = through(copy, True)
        assert agreed is not None and agreed > 0.8, f"a copy shifted by {turn} agrees"
        other = through(_hue_shifted(lookalike, turn), True)
        assert other is not None and other < 0.4, "another belly differs in colour"
    # A badge with other letters still differs where its letters do.
    badge_work, corners_badge = (
        badge("LOKA"),
        ((0.0, 0.0), (384.0, 0.0), (384.0, 384.0), (0.0, 384.0)),
    )
    other_badge = badge("LIRA")
    measured = alignment.through(
        alignment.square_of(badge_work, None), alignment.grey(other_badge), corners_badge,
        lined_up=True, coloured=alignment.colour(other_badge),
    )  # fmt: skip
    assert measured is not None and measured < 0.4
    # A square kept in grey only is measured in grey, whatever the query brings.
    grey_only = alignment.Square(reference.pixels, reference.opaque)
    copy = _hue_shifted(work, 90)
    pixels = alignment.colour(copy)
    assert alignment.through(
        grey_only, alignment.grey(copy), corners, lined_up=True, coloured=pixels
    ) == through(copy, False)


def test_the_whole_query_is_compared_in_colour_in_every_turn() -> None:
    work = _creature()
    reference = alignment.square_of(work, None)

    def whole_in(query: Image.Image, coloured: bool) -> float | None:
        pixels = alignment.colour(query) if coloured else None
        return alignment.best_agreement([(reference, [])], alignment.grey(query), coloured=pixels)

    lookalike = _creature("square")
    assert (whole_in(lookalike, False) or 0.0) > 0.8, "in grey the belly does not show"
    assert (whole_in(lookalike, True) or 0.0) < 0.4
    for turn in (40, 128):
        copy = _hue_shifted(work, turn).transpose(Image.Transpose.ROTATE_90)
        agreed = whole_in(copy.resize((200, 200)), True)
        assert agreed is not None and agreed > 0.8, f"a turned copy shifted by {turn} agrees"
