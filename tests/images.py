"""Image helpers shared by the tests: PNG bytes of a picture, a work pasted into a scene."""

from __future__ import annotations

import io

from PIL import Image

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
