"""The located region: SSCD on the part of the query where verified keypoints put a work,
and the query-side proposals (a padded copy's content box, a collage's tiles), each
against the same check with its switch off."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from screener import Screener, Settings
from screener.core import fusion
from screener.core.samples import scene
from tests import needs
from tests.images import own_region, png, registered

needs.module("cv2", "local")
pytestmark = pytest.mark.slow

WORKS = {f"art-{k}": scene(60 + k, size=(384, 288)) for k in range(3)}
REGION = "sscd_region_cosine"


def _screener(data: Path, switches: bool = True) -> Screener:
    settings = Settings(
        data_dir=data,
        signals=["phash", "pdq", "sscd"],
        located_region=switches,
        region_proposals=switches,
        placed_region=False,  # tests/screener/test_placed_region.py measures it
    )
    return registered(settings, WORKS)


@pytest.fixture(scope="module")
def screeners(tmp_path_factory: pytest.TempPathFactory) -> tuple[Screener, Screener]:
    new = _screener(tmp_path_factory.mktemp("new"))
    old = _screener(tmp_path_factory.mktemp("old"), switches=False)
    return new, old


def _small_composite() -> Image.Image:
    """art-1 at 30 % of the side of a new scene."""
    canvas = scene(901, size=(640, 640))
    canvas.paste(WORKS["art-1"].resize((192, 144)), (380, 60))
    return canvas


def test_a_small_composite_is_compared_where_the_keypoints_put_it(
    screeners: tuple[Screener, Screener],
) -> None:
    new, old = screeners
    located, where = own_region(new, _small_composite(), "art-1")
    fixed, _ = own_region(old, _small_composite(), "art-1")
    assert where == "located"
    assert located > fixed + 0.1


def test_the_located_crop_of_a_copy_is_not_another_works_match(
    screeners: tuple[Screener, Screener],
) -> None:
    new, _ = screeners
    analysis = new.analyse(png(_small_composite()))
    others = [m for m in analysis.candidates if m.work_id != "art-1"]
    assert all(
        m.regions.get(REGION) is None or m.regions[REGION].query != "located" for m in others
    )


def test_a_collage_tile_is_compared_alone(screeners: tuple[Screener, Screener]) -> None:
    new, old = screeners
    tile = 256
    collage = Image.new("RGB", (2 * tile, 2 * tile))
    sources = [scene(700 + k, size=(tile, tile)) for k in range(3)]
    sources.insert(2, WORKS["art-2"].resize((tile, tile)))
    for i, source in enumerate(sources):
        collage.paste(source, ((i % 2) * tile, (i // 2) * tile))
    value, where = own_region(new, collage, "art-2")
    before, _ = own_region(old, collage, "art-2")
    assert where.startswith("tile")
    assert value > before


def test_a_padded_copy_is_compared_without_its_border(
    screeners: tuple[Screener, Screener],
) -> None:
    new, old = screeners
    padded = ImageOps.expand(WORKS["art-0"], border=(150, 40, 20, 160), fill=(30, 30, 200))
    value, where = own_region(new, padded, "art-0")
    before, _ = own_region(old, padded, "art-0")
    assert where == "content"
    assert value > before


def test_keypoints_alone_review_what_the_block_band_would_block(
    screeners: tuple[Screener, Screener],
) -> None:
    _, old = screeners  # without the located region: the keypoints are all it has
    analysis = old.analyse(png(_small_composite()), include_works=["art-1"])
    (match,) = [m for m in analysis.candidates if m.work_id == "art-1"]
    assert match.fused_score >= match.thresholds["block"]
    assert not fusion.block_supported(match.signals, old.policy)
    assert match.decision == "review"


def test_the_verdict_reports_its_matchs_log_odds(screeners: tuple[Screener, Screener]) -> None:
    new, _ = screeners
    verdict = new.check(png(WORKS["art-0"]))
    assert verdict.top_match is not None
    assert verdict.fused_score == verdict.top_match.fused_score
    assert verdict.log_odds == verdict.top_match.log_odds
    assert verdict.log_odds > 0  # an exact copy: far past every ramp


def test_a_policy_put_in_force_changes_the_proposals(
    screeners: tuple[Screener, Screener],
) -> None:
    new, _ = screeners
    padded = ImageOps.expand(WORKS["art-0"], border=(150, 40, 20, 160), fill=(30, 30, 200))
    shipped = new.policy
    rules = dataclasses.replace(shipped.matching.proposals, min_border=0.95)
    new.policy = dataclasses.replace(
        shipped, matching=dataclasses.replace(shipped.matching, proposals=rules)
    )
    try:
        _, where = own_region(new, padded, "art-0")
    finally:
        new.policy = shipped
    assert where != "content"  # the border takes less than 95 % of the area
    assert own_region(new, padded, "art-0")[1] == "content"
