"""Query-side proposals: a padded copy's content box and a collage's tiles."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from screener.core.proposals import ProposalRules, content_box, measure_copy, proposals
from screener.core.samples import drawing, scene

RULES = ProposalRules()


def _rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def _collage(tiles: list[Image.Image], side: int, gap: int = 0) -> Image.Image:
    canvas = Image.new("RGB", (2 * side + gap, 2 * side + gap), (255, 255, 255))
    for i, tile in enumerate(tiles):
        canvas.paste(tile.resize((side, side)), ((i % 2) * (side + gap), (i // 2) * (side + gap)))
    return canvas


def _near(region: tuple[float, float, float, float], box: tuple[float, ...]) -> bool:
    return all(abs(a - b) <= 0.04 for a, b in zip(region, box, strict=True))


def test_a_collage_of_scenes_splits_into_its_four_tiles() -> None:
    found = proposals(_rgb(_collage([scene(s, (200, 200)) for s in range(4)], 200)), RULES)
    tiles = [(r.left, r.top, r.right, r.bottom) for r in found if r.name.startswith("tile")]
    quadrants = [(0, 0, 0.5, 0.5), (0.5, 0, 1, 0.5), (0, 0.5, 0.5, 1), (0.5, 0.5, 1, 1)]
    assert len(tiles) == 4
    assert all(any(_near(t, q) for t in tiles) for q in quadrants)


def test_drawings_on_white_split_at_the_gutters_between_them() -> None:
    tiles = [ImageOps.expand(drawing(s, size=(160, 160)), 20, fill="white") for s in range(4)]
    found = proposals(_rgb(_collage(tiles, 200, gap=16)), RULES)
    assert sum(r.name.startswith("tile") for r in found) == 4


def test_a_padded_copy_proposes_the_work_without_its_border() -> None:
    work = scene(7, (300, 200))
    padded = ImageOps.expand(work, border=(40, 90, 120, 30), fill=(20, 160, 90))
    (content,) = [r for r in proposals(_rgb(padded), RULES) if r.name == "content"]
    width, height = padded.size
    assert _near(
        (content.left, content.top, content.right, content.bottom),
        (40 / width, 90 / height, 340 / width, 290 / height),
    )


@pytest.mark.parametrize("seed", range(5))
def test_a_single_scene_proposes_nothing(seed: int) -> None:
    assert proposals(_rgb(scene(seed, (384, 384))), RULES) == ()


def test_a_uniform_picture_keeps_its_whole_box() -> None:
    flat = measure_copy(np.full((64, 80, 3), 200, dtype=np.uint8))
    assert content_box(flat, RULES) == (0, 0, 80, 64)


def test_rules_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="shares"):
        ProposalRules(min_tile=0.6)


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (1, 40), (40, 1), (3, 200), (200, 3)])
def test_tiny_and_thin_pictures_propose_without_failing(size: tuple[int, int]) -> None:
    # A 1x1 PNG reached the seam search with no column pairs at all (an IndexError, a 500).
    rng = np.random.default_rng(sum(size))
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    found = proposals(pixels, ProposalRules())
    for region in found:
        assert 0 <= region.left < region.right <= 1 and 0 <= region.top < region.bottom <= 1
