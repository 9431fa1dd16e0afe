"""Turn untrusted image bytes into upright RGB pixels: the only module that opens them.

Everything that can go wrong with the bytes surfaces as a subclass of
:class:`screener.core.errors.DecodeError`; nothing else escapes :func:`decode` for any input.

The steps, in order:

1. Size cap: more than ``Limits.max_bytes`` bytes is :class:`ImageTooLarge`; none is
   :class:`EmptyImage`.
2. Sniff the format from the leading bytes (never a file name). A format outside
   ``Limits.formats``, a vector format (SVG), text, HTML and other non-images are
   :class:`UnsupportedFormat`; binary data with no image signature at all is
   :class:`CorruptImage` (it cannot be told apart from a damaged file).
3. Open lazily with Pillow, restricted to the sniffed format, and check
   ``width * height`` from the header against ``Limits.max_pixels`` *before* any pixel is
   decoded (:class:`ImageTooLarge`). Pillow's own decompression-bomb error (at twice its
   ``MAX_IMAGE_PIXELS``) is mapped to :class:`ImageTooLarge` as well. No global Pillow or
   ``warnings`` setting is changed (``warnings.catch_warnings`` is not thread-safe before
   Python 3.14); our own pixel check is what refuses bombs.
4. Take the first frame only (GIF, TIFF, WebP, MPO). For a JPEG larger than ``max_side``
   ask libjpeg for a 1/2, 1/4 or 1/8 scale decode (``Image.draft``).
5. Decode, then normalise the pixel mode to RGB plus an optional alpha mask (see
   :func:`to_rgb` for the per-mode choices), apply the EXIF orientation, shrink so the long
   side is at most ``max_side`` and composite any transparency over ``background``.

Truncated data is :class:`CorruptImage` with a message saying so; other decoder failures are
:class:`CorruptImage`, or :class:`UnsupportedFormat` when Pillow says the variant (pixel
layout, compression) is one it cannot decode. Messages are written for end users and never
echo the bytes; the original exception is kept as ``__cause__``.

The limits and the sniffing (steps 1 and 2) live in :mod:`screener.core.image_formats`, the
pixel conversion (step 5) in :mod:`screener.core.pixels`; their public names are importable
from here as before.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError, features

from screener.core.errors import (
    CorruptImage,
    DecodeError,
    EmptyImage,
    ImageTooLarge,
    UnreadableFile,
    UnsupportedFormat,
)
from screener.core.image_formats import (
    _FRIENDLY,
    DEFAULT_FORMATS,
    Limits,
    _accepted,
    _fmt_bytes,
    _refuse_sniffed,
    _sniff,
    _Sniffed,
    sniff_format,
    tiff_pieces,
)
from screener.core.pixels import (
    WHITE,
    _check_background,
    _fit,
    _orientation,
    _tiff_orientation,
    _working_image,
    composite,
    to_rgb,
    upright_transpose,
)

__all__ = [
    "DEFAULT_FORMATS",
    "DecodedImage",
    "Limits",
    "composite",
    "decode",
    "decode_file",
    "sniff_format",
    "to_rgb",
    "upright_transpose",
]


@dataclass(frozen=True)
class DecodedImage:
    """An image decoded to upright RGB pixels, with what was learnt about its source."""

    # Mode "RGB", upright (EXIF orientation applied), alpha composited over the background.
    image: Image.Image
    # Mode "L", upright, same size as ``image``, when the source declares alpha (an alpha
    # band or a transparency key), even if every pixel is opaque; else None.
    alpha: Image.Image | None
    # Sniffed Pillow format name, e.g. "JPEG".
    format: str
    # Pillow mode of the source, e.g. "CMYK", "P", "I;16".
    source_mode: str
    # Full upright size of the source, even when ``image`` was decoded smaller.
    width: int
    height: int
    # Hex SHA-256 of the input bytes.
    sha256: str
    # EXIF orientation found, 1..8 (1 when absent, invalid or unreadable).
    orientation: int

    @property
    def is_transparent(self) -> bool:
        """True when some pixel is not fully opaque (so the background matters)."""
        if self.alpha is None:
            return False
        lowest = self.alpha.getextrema()[0]
        return isinstance(lowest, (int, float)) and lowest < 255


# --------------------------------------------------------------------------- decoding


def decode(
    data: bytes,
    *,
    limits: Limits = Limits(),
    max_side: int | None = None,
    background: tuple[int, int, int] = WHITE,
) -> DecodedImage:
    """Decode untrusted image bytes; see the module docstring for the rules.

    ``max_side``: when given and the image is larger, it is decoded reduced so that its long
    side is at most ``max_side`` (``width``/``height`` still give the full source size).
    ``background``: the colour transparency is composited over.
    """
    _check_background(background)
    if max_side is not None and max_side < 1:
        raise ValueError("max_side must be at least 1")
    data = bytes(data)
    size = len(data)
    if size > limits.max_bytes:
        raise ImageTooLarge(
            f"The image is {_fmt_bytes(size)}, more than the {_fmt_bytes(limits.max_bytes)} limit."
        )
    if size == 0:
        raise EmptyImage("The image is empty (0 bytes).")
    sha256 = hashlib.sha256(data).hexdigest()

    sniffed = _sniff(data)
    if sniffed.pil_format is None or sniffed.pil_format not in limits.formats:
        if sniffed.pil_format == "JPEG" and "MPO" in limits.formats:
            pass  # an MPO starts like a JPEG; Pillow tells them apart below
        else:
            raise _refuse_sniffed(sniffed, limits)
    if sniffed.pil_format in {"WEBP", "AVIF"} and not features.check(sniffed.pil_format.lower()):
        raise UnsupportedFormat(
            f"{sniffed.label} decoding is not available on this server; "
            f"send a raster image ({_accepted(limits)})."
        )

    if sniffed.pil_format == "TIFF":
        pieces = tiff_pieces(data)
        if pieces is not None and pieces > limits.max_tiff_pieces:
            raise ImageTooLarge(
                f"The TIFF image is stored in {pieces:,} strips or tiles, more than the "
                f"{limits.max_tiff_pieces:,} this server decodes (a possible decompression "
                "bomb); save it with larger strips, or as PNG or JPEG."
            )

    try:
        return _decode_pixels(
            data,
            sniffed=sniffed,
            limits=limits,
            max_side=max_side,
            background=background,
            sha256=sha256,
        )
    except DecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own bomb check fired (beyond twice its MAX_IMAGE_PIXELS, or a warning
        # turned into an error by the caller's filters) before ours could.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        declared = f"{int(found.group(1)) / 1e6:.1f} megapixels" if found else "too many pixels"
        raise ImageTooLarge(
            f"The {sniffed.label} image declares {declared}, more than the "
            f"{limits.max_pixels / 1e6:g}-megapixel limit (a possible decompression bomb)."
        ) from exc
    except MemoryError as exc:
        raise ImageTooLarge(
            f"The {sniffed.label} image is too large to decode with the memory available."
        ) from exc
    except Exception as exc:
        raise _classify(_underlying(exc, data, sniffed), sniffed.label) from exc


def _underlying(exc: Exception, data: bytes, sniffed: _Sniffed) -> Exception:
    """The plugin's own error behind Pillow's generic "cannot identify image file".

    ``Image.open`` swallows the reason a plugin refused the data (for instance a TIFF pixel
    layout it cannot decode); opening once more with the plugin alone recovers it, so the
    error can say "unsupported variant" rather than "corrupt".
    """
    if not isinstance(exc, UnidentifiedImageError) or sniffed.pil_format is None:
        return exc
    entry = Image.OPEN.get(sniffed.pil_format)
    if entry is None:
        return exc
    try:
        entry[0](io.BytesIO(data), "").close()
    except Exception as inner:
        return inner
    return exc


def _classify(exc: Exception, label: str) -> DecodeError:
    """Map an exception from Pillow to a typed error with a message for an end user."""
    message = str(exc).lower()
    if (
        isinstance(exc, EOFError)
        or "truncated" in message
        or "broken data stream" in message
        or "premature end" in message
        or "not enough data" in message
        or "ran out of data" in message
    ):
        return CorruptImage(
            f"The {label} image is truncated: the data ends before the image is complete."
        )
    if (
        "unsupported" in message
        or "not supported" in message
        or "unknown pixel mode" in message
        or "not available" in message
    ):
        return UnsupportedFormat(
            f"This {label} image uses a variant (pixel layout, bit depth or compression) "
            "that cannot be decoded; convert it to a common 8-bit JPEG or PNG."
        )
    return CorruptImage(f"The {label} image is corrupt and could not be decoded.")


def _decode_pixels(
    data: bytes,
    *,
    sniffed: _Sniffed,
    limits: Limits,
    max_side: int | None,
    background: tuple[int, int, int],
    sha256: str,
) -> DecodedImage:
    assert sniffed.pil_format is not None
    with Image.open(io.BytesIO(data), formats=[sniffed.pil_format]) as im:
        fmt = str(im.format or sniffed.pil_format)
        if fmt not in limits.formats:
            raise UnsupportedFormat(
                f"{_FRIENDLY.get(fmt, fmt)} images are not supported; "
                f"send a raster image ({_accepted(limits)})."
            )
        width, height = im.size
        if width < 1 or height < 1:
            raise CorruptImage(f"The {sniffed.label} image declares a size of {width}x{height}.")
        if width * height > limits.max_pixels:
            raise ImageTooLarge(
                f"The image is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels), "
                f"more than the {limits.max_pixels / 1e6:g}-megapixel limit."
            )
        im.seek(0)  # the first frame only (a no-op that reads nothing when already there)
        source_mode = im.mode
        if max_side is not None and max(width, height) > max_side and fmt in {"JPEG", "MPO"}:
            # libjpeg decodes at the largest 1/1, 1/2, 1/4 or 1/8 scale that is still at
            # least this size; the resize below does the rest with a good filter.
            scale = max_side / max(width, height)
            im.draft("RGB", (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))
        # Recent Pillow TIFF readers apply the Orientation tag themselves while loading,
        # removes the tag and reports the upright size from the header: note it first.
        stored = _tiff_orientation(im) if fmt == "TIFF" else 1
        im.load()
        orientation = _orientation(im)
        working = _working_image(im)

    if stored != 1 and orientation == 1:  # already applied by the loader
        orientation, to_apply = stored, 1
    else:
        to_apply = orientation
    transpose = upright_transpose(to_apply)
    if transpose is not None:
        working = working.transpose(transpose)
    if to_apply >= 5:
        width, height = height, width
    if max_side is not None and max(working.size) > max_side:
        working = working.resize(
            _fit(working.size, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0
        )
    alpha: Image.Image | None = None
    if working.mode == "RGBA":
        alpha = working.getchannel("A")
        working = composite(working, background)
    return DecodedImage(
        image=working,
        alpha=alpha,
        format=fmt,
        source_mode=source_mode,
        width=width,
        height=height,
        sha256=sha256,
        orientation=orientation,
    )


def decode_file(
    path: Path,
    *,
    limits: Limits = Limits(),
    max_side: int | None = None,
    background: tuple[int, int, int] = WHITE,
) -> DecodedImage:
    """Decode the image file at ``path``; reads at most ``limits.max_bytes + 1`` bytes.

    A missing or unreadable file is :class:`UnreadableFile` naming the path.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(limits.max_bytes + 1)
    except FileNotFoundError as exc:
        raise UnreadableFile(f"The image file {path} does not exist.") from exc
    except IsADirectoryError as exc:
        raise UnreadableFile(f"{path} is a directory, not an image file.") from exc
    except PermissionError as exc:
        raise UnreadableFile(f"The image file {path} cannot be read (permission denied).") from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UnreadableFile(f"The image file {path} cannot be read ({reason}).") from exc
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"The image file {path} is more than the {_fmt_bytes(limits.max_bytes)} limit."
        )
    return decode(data, limits=limits, max_side=max_side, background=background)
