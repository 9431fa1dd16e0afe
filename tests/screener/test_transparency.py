"""A transparent reference matches its content on any background, not just on white."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from screener import Screener, Settings
from screener.core.decode import composite
from screener.core.samples import drawing, scene
from screener.matching.signals import EXTRA_BACKGROUNDS, over_background


def test_over_background_recovers_straight_colours() -> None:
    rgba = Image.new("RGBA", (3, 1))
    rgba.putdata([(200, 10, 10, 255), (0, 0, 200, 128), (50, 50, 50, 0)])
    on_white = composite(rgba)
    out = np.asarray(over_background(on_white, rgba.getchannel("A"), (0, 0, 0)), dtype=int)
    assert out[0, 0].tolist() == [200, 10, 10]  # opaque: unchanged
    assert out[0, 2].tolist() == [0, 0, 0]  # transparent: the new background
    half = round(200 * 128 / 255)
    assert np.abs(out[0, 1] - [0, 0, half]).max() <= 2  # the colour, not white, blended


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def on(art: Image.Image, background: tuple[int, int, int] | Image.Image) -> bytes:
    canvas = (
        background.resize(art.size).convert("RGB")
        if isinstance(background, Image.Image)
        else Image.new("RGB", art.size, background)
    )
    canvas.paste(art, mask=art.getchannel("A"))
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


@pytest.mark.slow
def test_transparent_work_is_caught_on_dark_and_coloured_backgrounds(tmp_path: Path) -> None:
    with Screener(Settings(data_dir=tmp_path, signals=["phash", "pdq", "sscd"])) as screener:
        arts = {f"char-{k}": drawing(k, transparent=True) for k in range(4)}
        for work_id, art in arts.items():
            screener.registry.register(work_id, [png(art)])
        screener.registry.register("opaque", [png(scene(3))])

        regions = {
            (fp.work_id, fp.region)
            for fp in screener.catalog.fingerprints_of_works(
                [*arts, "opaque"], "sscd", screener.signals.available["sscd"].spec_id
            )
        }
        for name in EXTRA_BACKGROUNDS:
            assert ("char-0", f"whole/bg-{name}") in regions
        assert not any(
            region.startswith("whole/bg-") for work, region in regions if work == "opaque"
        )

        for work_id, art in arts.items():
            for background in ((0, 0, 0), (20, 30, 90), (240, 140, 20)):
                verdict = screener.check(on(art, background))
                assert verdict.decision == "block", (work_id, background, verdict.fused_score)
                assert verdict.top_work_id == work_id
        # Unrelated drawings on the same plain backgrounds stay allowed.
        for k in range(100, 106):
            for background in ((0, 0, 0), (128, 128, 128), (255, 255, 255)):
                verdict = screener.check(on(drawing(k, transparent=True), background))
                assert verdict.decision == "allow", (k, background, verdict.fused_score)
