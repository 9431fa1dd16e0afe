"""A character's colours: the histogram, its likeness, and the check's colour evidence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy.orm import Session

from screener.core import palette
from screener.core.decode import DecodedImage, decode
from screener.core.verdict import RegionPair
from screener.matching import characters
from screener.matching.candidates import Best, Candidate
from screener.matching.characters import COLOUR, LIKENESS, MARGIN, Scores
from screener.matching.reference_cache import ReferenceCache
from screener.store.catalog import Catalog
from screener.store.catalog.tables import BlobRow


def _flat(colour: tuple[int, int, int], size: int = 64) -> np.ndarray:
    return np.full((size, size, 3), colour, dtype=np.uint8)


def test_colours_are_shares_of_the_counted_pixels() -> None:
    picture = _flat((250, 10, 10))
    picture[:, :16] = (10, 10, 250)  # a quarter blue
    shares = palette.colours(picture)
    assert shares.shape == (palette.LEVELS**3,)
    assert shares.sum() == pytest.approx(1.0)
    assert sorted(shares[shares > 0]) == pytest.approx([0.25, 0.75])
    only_red = np.zeros(picture.shape[:2], dtype=bool)
    only_red[:, 32:] = True
    assert palette.colours(picture, only_red).max() == pytest.approx(1.0)
    assert palette.colours(picture, np.zeros_like(only_red)).sum() == 0.0


def test_likeness_is_one_for_the_same_colours_and_zero_for_none_in_common() -> None:
    red, blue = palette.colours(_flat((250, 10, 10))), palette.colours(_flat((10, 10, 250)))
    assert palette.likeness(red, red) == pytest.approx(1.0)
    assert palette.likeness(red, blue) == 0.0
    half = palette.colours(np.concatenate([_flat((250, 10, 10)), _flat((10, 10, 250))]))
    assert palette.likeness(red, half) == pytest.approx(np.sqrt(0.5))


def test_the_figure_is_counted_not_its_background() -> None:
    """A red figure on a green-to-blue gradient: its colours are the figure's; with an
    alpha channel, the opaque pixels are."""
    width = 200
    t = np.linspace(0, 1, width)[None, :, None]
    gradient = ((1 - t) * np.array([20, 200, 60]) + t * np.array([30, 60, 220])).astype(np.uint8)
    picture = np.repeat(gradient, 160, axis=0)
    picture[50:120, 70:130] = (230, 30, 30)
    red = palette.colours(_flat((230, 30, 30)))
    assert palette.likeness(palette.figure_colours(picture), red) > 0.95
    assert palette.likeness(palette.colours(picture), red) < 0.5  # the whole picture
    alpha = np.zeros(picture.shape[:2], dtype=np.uint8)
    alpha[:20, :20] = 255
    corner = palette.figure_colours(picture, alpha)
    assert palette.likeness(corner, palette.colours(picture[:20, :20])) == pytest.approx(1.0)


def _candidate(work_id: str) -> Candidate:
    return Candidate(work_id, {MARGIN: Best(0.1, RegionPair("whole", 7, "whole"))})


def test_likeness_is_similarity_times_colour_less_the_best_other_in_the_cohort() -> None:
    red, blue = palette.colours(_flat((250, 10, 10))), palette.colours(_flat((10, 10, 250)))
    scores = Scores({}, {"cat": 0.8, "other-cat": 0.9, "dog": 0.5})
    candidates = {"cat": _candidate("cat"), "dog": _candidate("dog")}
    references = {"cat": [(1, blue), (2, red)], "other-cat": [(3, blue)], "dog": [(4, red)]}
    characters.add_likeness(scores, candidates, red, references)
    cat, dog = candidates["cat"].best, candidates["dog"].best
    assert cat[COLOUR].value == pytest.approx(1.0) and dog[COLOUR].value == pytest.approx(1.0)
    # other-cat is closer by shape (0.9) but has none of the query's colours: the cohort's
    # best other for cat is dog's 0.5, and for dog it is cat's 0.8.
    assert cat[LIKENESS].value == pytest.approx(0.8 - 0.5)
    assert dog[LIKENESS].value == pytest.approx(0.5 - 0.8)
    assert "other-cat" not in candidates  # in the cohort, not made a candidate
    assert cat[LIKENESS].pair == RegionPair("whole", 7, "whole")


def test_a_candidate_without_character_evidence_gets_no_colour() -> None:
    red = palette.colours(_flat((250, 10, 10)))
    plain = Candidate("logo")
    characters.add_likeness(Scores({}, {"logo": 0.7}), {"logo": plain}, red, {"logo": [(1, red)]})
    assert COLOUR not in plain.best and LIKENESS not in plain.best


def test_the_reference_cache_makes_each_image_once_and_forgets_the_oldest(
    tmp_path: Path,
) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    blobs = []
    for i, colour in enumerate([(250, 10, 10), (10, 250, 10), (10, 10, 250)]):
        image = Image.fromarray(_flat(colour))
        path = tmp_path / f"{i}.png"
        image.save(path)
        blobs.append(decode(path.read_bytes()).sha256)
        with Session(catalog.engine) as session, session.begin():
            session.add(BlobRow(sha256=blobs[-1], data=path.read_bytes()))
    made: list[str] = []

    def make(decoded: DecodedImage) -> str:
        made.append(str(decoded))
        return f"made {len(made)}"

    cache: ReferenceCache[str] = ReferenceCache(make, capacity=2)
    assert cache.get(catalog, blobs[0]) == "made 1"
    assert cache.get(catalog, blobs[0]) == "made 1" and len(made) == 1
    cache.get(catalog, blobs[1])
    cache.get(catalog, blobs[2])  # past capacity: the least recently used goes
    assert len(cache) == 2
    assert cache.get(catalog, blobs[0]) == "made 4"
    assert cache.get(catalog, "0" * 64) is None  # no such blob: nothing, no error
