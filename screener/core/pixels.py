"""Pixels after decoding: any Pillow mode to RGB plus an optional alpha mask, the EXIF
orientation, the size cap and compositing over a background (the last steps of
:func:`screener.core.decode.decode`, also used on their own by the labels)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image

from screener.core.errors import UnsupportedFormat

WHITE: Final = (255, 255, 255)

_ORIENTATION_TAG: Final = 0x0112


# EXIF orientation -> the transpose that makes the image upright (EXIF 2.3, section 4.6.4).
_TRANSPOSES: Final[dict[int, Image.Transpose]] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# Rows converted at a time for 16/32-bit and float images, to bound temporary memory.
_CHUNK_ROWS: Final = 1024


def composite(image_rgba: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """Composite an image with alpha over a solid ``background``; returns mode "RGB".

    Another mode is first normalised as :func:`to_rgb` does (so LA, PA, La, RGBa and P with
    transparency work too); an image without alpha is simply converted to RGB.
    """
    _check_background(background)
    if image_rgba.mode != "RGBA":
        image_rgba = _working_image(image_rgba)
        if image_rgba.mode != "RGBA":
            return image_rgba
    out = Image.new("RGB", image_rgba.size, background)
    out.paste(image_rgba.convert("RGB"), mask=image_rgba.getchannel("A"))
    return out


def to_rgb(
    image: Image.Image, background: tuple[int, int, int] = WHITE
) -> tuple[Image.Image, Image.Image | None]:
    """Normalise any Pillow mode to ``(rgb, alpha)``; alpha is None unless declared.

    Per mode (alpha, when the source declares it, is composited over ``background`` and
    returned as a mode "L" mask):

    * ``1``, ``L``, ``RGB``, ``RGBX``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``: Pillow's
      conversion to RGB (CMYK naively, without an ICC profile); a ``transparency`` colour
      key in ``info`` becomes alpha.
    * ``LA``, ``La``, ``PA``, ``RGBA``, ``RGBa``: alpha band kept (premultiplied modes are
      un-premultiplied first).
    * ``P``: converted through RGBA, so both a ``transparency`` screener/index/table and an RGBA
      palette become alpha.
    * ``I``, ``I;16``, ``I;16B``/``L``/``N`` (16/32-bit integers): values 0..255 are taken as
      8-bit data; otherwise the data is scaled from the bit depth it actually uses,
      ``2**bit_length(max) - 1``, down to 255 (a full 16-bit image is divided by 257, 12-bit
      data in a 16-bit container by 4095/255), so low-range images are neither clipped to
      white nor crushed to black. Negative data is first shifted so its minimum is 0.
      A ``transparency`` key is matched against the raw values.
    * ``F`` (32-bit float): clipped to 0..255 and rounded (Pillow's own float images, e.g.
      ``convert("F")`` of an 8-bit image, hold 0..255); NaN becomes 0. Float data in 0..1 is
      therefore near black: not rescaled, a documented choice.
    """
    _check_background(background)
    working = _working_image(image)
    if working.mode == "RGBA":
        return composite(working, background), working.getchannel("A")
    return working, None


def _working_image(im: Image.Image) -> Image.Image:
    """Return a new image in mode RGBA when the source declares alpha, else RGB.

    Alpha is declared by an alpha band or a ``transparency`` key in ``info``; it is kept
    even when every pixel happens to be opaque (see :attr:`DecodedImage.is_transparent`).
    """
    mode = im.mode
    trns = im.info.get("transparency")
    if mode in {"I", "F"} or mode.startswith("I;"):
        return _wide_to_working(im, trns)
    if mode == "P":
        return im.convert("RGBA" if _palette_has_alpha(im) else "RGB")
    if mode == "La":  # Pillow converts premultiplied La only to LA
        return im.convert("LA").convert("RGBA")
    if mode in {"RGBA", "LA", "PA", "RGBa"} or (trns is not None and mode in {"1", "L", "RGB"}):
        return im.convert("RGBA")
    if mode == "RGB":
        return im.copy()
    # 1, L, RGBX, CMYK, YCbCr, LAB (whose "A" band is not alpha), HSV, and anything newer.
    try:
        return im.convert("RGB")
    except ValueError as exc:
        raise UnsupportedFormat(
            f"Images in pixel mode {mode} are not supported; convert it to 8-bit RGB."
        ) from exc


def _palette_has_alpha(im: Image.Image) -> bool:
    if im.info.get("transparency") is not None:
        return True
    palette = im.palette
    return palette is not None and palette.mode in {"RGBA", "RGBa"}


def _wide_to_working(im: Image.Image, trns: object) -> Image.Image:
    """16/32-bit integer and float images -> 8-bit gray (RGB), alpha from a colour key."""
    arr = np.asarray(im)
    if arr.ndim != 2 or arr.size == 0:
        raise UnsupportedFormat(
            f"Images in pixel mode {im.mode} are not supported; convert it to 8-bit RGB."
        )
    if arr.dtype.kind == "f":
        convert: Callable[[npt.NDArray[np.generic]], npt.NDArray[np.uint8]] = _float_rows
    else:
        lo, hi = int(arr.min()), int(arr.max())
        shift = min(lo, 0)
        span = hi - shift
        factor = 1.0 if span <= 255 else 255.0 / ((1 << span.bit_length()) - 1)

        def convert(rows: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
            scaled = (rows.astype(np.float64) - shift) * factor
            return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)

    gray = np.empty(arr.shape, dtype=np.uint8)
    for start in range(0, arr.shape[0], _CHUNK_ROWS):
        gray[start : start + _CHUNK_ROWS] = convert(arr[start : start + _CHUNK_ROWS])
    rgb = Image.fromarray(gray).convert("RGB")
    if isinstance(trns, (int, float)) and not isinstance(trns, bool):
        rgba = rgb.convert("RGBA")
        rgba.putalpha(Image.fromarray(np.where(arr == trns, 0, 255).astype(np.uint8)))
        return rgba
    return rgb


def _float_rows(rows: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    values = np.nan_to_num(rows.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation, 1..8; 1 when absent, out of range or the EXIF is unreadable."""
    try:
        return _valid_orientation(im.getexif().get(_ORIENTATION_TAG))
    except Exception:  # a corrupt EXIF block must never stop the decode
        return 1


def _tiff_orientation(im: Image.Image) -> int:
    """The TIFF Orientation tag as read from the header, before any pixel is loaded."""
    try:
        return _valid_orientation(getattr(im, "tag_v2", {}).get(_ORIENTATION_TAG))
    except Exception:  # an unreadable tag is no orientation
        return 1


def upright_transpose(orientation: object) -> Image.Transpose | None:
    """The transpose that makes an image with this EXIF orientation upright (None: none)."""
    return _TRANSPOSES.get(orientation) if isinstance(orientation, int) else None


def _valid_orientation(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 8:
        return value
    return 1


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = size
    scale = max_side / max(width, height)
    return max(1, min(max_side, round(width * scale))), max(1, min(max_side, round(height * scale)))


def _check_background(background: tuple[int, int, int]) -> None:
    if (
        not isinstance(background, tuple)
        or len(background) != 3
        or not all(isinstance(c, int) and 0 <= c <= 255 for c in background)
    ):
        raise ValueError("background must be a tuple of three integers 0..255")
