"""Image helpers shared by the tests: PNG bytes of a picture, a work pasted into a scene, a
screener with works registered and the region value a check gives a work."""

from __future__ import annotations

import io
from collections.abc import Mapping

from PIL import Image

from screener import Screener, Settings
from screener.core.samples import scene


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def composite(work: Image.Image, seed: int, at: tuple[int, int], scale: float) -> Image.Image:
    """The work shrunk and pasted into a new scene twice its size."""
    small = work.resize((round(work.width * scale), round(work.height * scale)))
    canvas = scene(seed, size=(work.width * 2, work.height * 2))
    canvas.paste(small, at)
    return canvas


def registered(settings: Settings, works: Mapping[str, Image.Image]) -> Screener:
    """A screener under ``settings`` with each of ``works`` registered from its PNG."""
    screener = Screener(settings)
    for work_id, art in works.items():
        screener.registry.register(work_id, [png(art)])
    return screener


def own_region(
    screener: Screener, image: Image.Image, work_id: str, evidence: str = "sscd_region_cosine"
) -> tuple[float, str]:
    """The value of ``evidence`` a check of ``image`` gives ``work_id``, and the query
    region it came from."""
    analysis = screener.analyse(png(image), include_works=[work_id])
    (match,) = [m for m in analysis.candidates if m.work_id == work_id]
    value = match.signals[evidence]
    assert value is not None
    return value, match.regions[evidence].query
