"""Feature-map windows in a check (setting ``sscd_windows``): a work pasted at about 30 %
of a generated scene is found by a window over it, naming the right work, and the setting
off gives no window evidence at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from screener import Screener, Settings
from screener.core.regions import parse_window
from screener.core.samples import drawing, scene
from screener.matching.explain import region_of
from tests.images import png, registered

pytestmark = [pytest.mark.slow, pytest.mark.sscd]

WORKS = {f"art-{k}": scene(60 + k, size=(384, 288)) for k in range(3)} | {
    f"draw-{k}": drawing(70 + k).convert("RGB") for k in range(3)
}
WINDOW = "sscd_window_cosine"
# Where the work goes in the 640x640 scene: (left, top, right, bottom) in pixels.
PASTE = (380, 60, 572, 204)


def _screener(data: Path, windows: bool) -> Screener:
    settings = Settings(data_dir=data, signals=["phash", "pdq", "sscd"], sscd_windows=windows)
    return registered(settings, WORKS)


def _composite() -> Image.Image:
    """art-1 at 30 % of the side of a new scene."""
    canvas = scene(901, size=(640, 640))
    left, top, right, bottom = PASTE
    canvas.paste(WORKS["art-1"].resize((right - left, bottom - top)), (left, top))
    return canvas


def test_a_window_over_a_small_composite_names_the_right_work(tmp_path: Path) -> None:
    screener = _screener(tmp_path, windows=True)
    analysis = screener.analyse(png(_composite()), include_works=list(WORKS))
    values = {m.work_id: m.signals.get(WINDOW) for m in analysis.candidates}
    assert all(v is not None for v in values.values())
    best = max(values, key=lambda w: values[w] or -1.0)
    assert best == "art-1"
    others = max(v for w, v in values.items() if w != "art-1" and v is not None)
    own = values["art-1"]
    assert own is not None and own > others + 0.03
    (match,) = [m for m in analysis.candidates if m.work_id == "art-1"]
    region = parse_window(match.regions[WINDOW].query)
    assert region is not None and region_of(region.name) == region
    # The window holds the centre of the pasted work.
    cx, cy = (PASTE[0] + PASTE[2]) / 2 / 640, (PASTE[1] + PASTE[3]) / 2 / 640
    assert region.left <= cx <= region.right and region.top <= cy <= region.bottom


def test_without_the_setting_no_window_is_compared(tmp_path: Path) -> None:
    screener = _screener(tmp_path, windows=False)
    analysis = screener.analyse(png(_composite()), include_works=list(WORKS))
    assert all(WINDOW not in m.signals for m in analysis.candidates)
