"""The placed region (`screener.matching.placed`): real checks of a transparent work pasted
small into a new scene, with the switch on and off, and of a look-alike pasted the same way."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PIL import Image

from screener import Screener, Settings
from screener.core.regions import parse_window
from screener.core.samples import drawing, scene
from screener.matching.explain import region_of
from tests import needs
from tests.images import own_region, png, registered

needs.module("cv2", "local")
pytestmark = pytest.mark.slow

WORKS = {f"art-{k}": drawing(80 + k, transparent=True) for k in range(4)}
# Registered opaque, flattened on white with a margin round it (a logo as often saved):
# its figure's mask stands in for an alpha.
SAVED_ON_WHITE = Image.new("RGBA", (384, 384), (0, 0, 0, 0))
SAVED_ON_WHITE.paste(drawing(85, transparent=True).resize((288, 288)), (48, 48))
WORKS["flat-0"] = Image.alpha_composite(
    Image.new("RGBA", SAVED_ON_WHITE.size, (255, 255, 255, 255)), SAVED_ON_WHITE
).convert("RGB")
REGION = "sscd_region_cosine"


def _screener(data: Path, placed: bool) -> Screener:
    settings = Settings(data_dir=data, signals=["phash", "pdq", "sscd"], placed_region=placed)
    return registered(settings, WORKS)


@pytest.fixture(scope="module")
def screeners(tmp_path_factory: pytest.TempPathFactory) -> tuple[Screener, Screener]:
    on = _screener(tmp_path_factory.mktemp("on"), placed=True)
    off = _screener(tmp_path_factory.mktemp("off"), placed=False)
    return on, off


def _pasted(work: Image.Image, seed: int) -> Image.Image:
    """``work`` at 30 % of the side of a new scene, the scene showing through its alpha."""
    canvas = scene(seed, size=(512, 512))
    small = work.resize((154, 154))
    canvas.paste(small.convert("RGB"), (300, 60), small.getchannel("A"))
    return canvas


@pytest.mark.parametrize(
    ("work_id", "pasted", "seed"),
    [
        ("art-2", WORKS["art-2"], 901),  # transparent: its alpha masks the crop
        ("flat-0", SAVED_ON_WHITE, 903),  # registered on white: its figure's mask does
    ],
)
def test_a_work_pasted_small_is_compared_where_its_pixels_put_it(
    screeners: tuple[Screener, Screener], work_id: str, pasted: Image.Image, seed: int
) -> None:
    on, off = screeners
    query = _pasted(pasted, seed)
    placed, where = own_region(on, query, work_id)
    before, before_where = own_region(off, query, work_id)
    assert where.startswith("placed:")
    assert not before_where.startswith("placed:")
    # The name holds the box, which the evidence picture outlines: the pasted square
    # (300, 60)-(454, 214) of 512.
    box = parse_window(where)
    assert box is not None and region_of(where) == box
    edges = (box.left, box.top, box.right, box.bottom)
    for got, want in zip(edges, (300, 60, 454, 214), strict=True):
        assert abs(got * 512 - want) < 12
    assert placed > before + 0.2
    assert placed > 0.6


def test_a_crop_of_a_work_is_compared_with_the_part_of_the_work_it_shows(
    screeners: tuple[Screener, Screener],
) -> None:
    on, off = screeners
    work = WORKS["flat-0"]  # 384 px: the crop shows (130, 60)-(370, 300) of it
    crop = work.crop((130, 60, 370, 300)).resize((300, 300))
    analysis = on.analyse(png(crop), include_works=["flat-0"])
    (match,) = [m for m in analysis.candidates if m.work_id == "flat-0"]
    value, pair = match.signals[REGION], match.regions[REGION]
    before, _ = own_region(off, crop, "flat-0")
    assert value is not None and pair.query == "whole"
    assert pair.reference.startswith("placed:")
    box = parse_window(pair.reference)
    assert box is not None
    edges = (box.left, box.top, box.right, box.bottom)
    for got, want in zip(edges, (130, 60, 370, 300), strict=True):
        assert abs(got * 384 - want) < 16
    assert value > max(before, 0.8)


def test_a_look_alike_pasted_the_same_way_stays_below_the_copy(
    screeners: tuple[Screener, Screener],
) -> None:
    on, _ = screeners
    copy, _ = own_region(on, _pasted(WORKS["art-1"], 902), "art-1")
    look_alike = on.analyse(png(_pasted(drawing(99, transparent=True), 902)))
    others = [m.signals.get(REGION) or 0.0 for m in look_alike.candidates]
    assert others
    assert max(others) < copy - 0.15


def test_placed_top_zero_in_the_policy_places_nothing(
    screeners: tuple[Screener, Screener],
) -> None:
    on, _ = screeners
    shipped = on.policy
    rules = dataclasses.replace(shipped.matching.proposals, placed_top=0)
    on.policy = dataclasses.replace(
        shipped, matching=dataclasses.replace(shipped.matching, proposals=rules)
    )
    try:
        _, where = own_region(on, _pasted(WORKS["art-2"], 901), "art-2")
    finally:
        on.policy = shipped
    assert not where.startswith("placed:")


def _without_keypoints(screener: Screener) -> None:
    """No local verification: an aligned agreement can then only come from a placement."""
    shipped = screener.policy
    screener.policy = dataclasses.replace(
        shipped, matching=dataclasses.replace(shipped.matching, verify_top=0)
    )


def _agreement(screener: Screener, image: Image.Image, work_id: str) -> float | None:
    analysis = screener.analyse(png(image), include_works=[work_id])
    (match,) = [m for m in analysis.candidates if m.work_id == work_id]
    assert match.local is None  # no keypoints behind it
    return match.signals.get("aligned_agreement")


def test_where_a_work_is_placed_its_cells_are_compared(
    screeners: tuple[Screener, Screener],
) -> None:
    on, _ = screeners
    shipped = on.policy
    _without_keypoints(on)
    try:
        pasted = _agreement(on, _pasted(WORKS["art-2"], 901), "art-2")
        crop = WORKS["flat-0"].crop((130, 60, 370, 300)).resize((300, 300))
        within = _agreement(on, crop, "flat-0")
        other = _agreement(on, _pasted(drawing(99, transparent=True), 901), "art-2")
    finally:
        on.policy = shipped
    assert pasted is not None and pasted > 0.8  # through the placed box, settled
    assert within is not None and within > 0.8  # through where the crop sits in the work
    assert other is None or other < 0.4  # another drawing pasted the same way
