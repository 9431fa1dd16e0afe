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
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError, features

from screener.core.errors import (
    CorruptImage,
    DecodeError,
    EmptyImage,
    ImageTooLarge,
    UnreadableFile,
    UnsupportedFormat,
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

DEFAULT_FORMATS: Final = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})

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

# Friendly names for messages, in the order they are listed to users.
_FRIENDLY: Final[dict[str, str]] = {
    "JPEG": "JPEG",
    "PNG": "PNG",
    "WEBP": "WebP",
    "GIF": "GIF",
    "BMP": "BMP",
    "TIFF": "TIFF",
    "MPO": "MPO",
}

# Rows converted at a time for 16/32-bit and float images, to bound temporary memory.
_CHUNK_ROWS: Final = 1024


@dataclass(frozen=True)
class Limits:
    """What :func:`decode` accepts."""

    max_bytes: int = 25 * 1024 * 1024
    # Checked from the header, before any pixel is decoded. Pillow itself refuses images
    # over twice its MAX_IMAGE_PIXELS (about 358 megapixels) whatever this says.
    max_pixels: int = 50_000_000
    # TIFF strips plus tiles of the first image, counted in the header before Pillow opens
    # it: Pillow spends Python time and memory per piece (1,000,000 one-row strips of a
    # 12 MB file: 4 s and 456 MB). A 50-megapixel RGB image in libtiff's default 8 KB strips
    # has about 18,000.
    max_tiff_pieces: int = 32_768
    # Formats allowed, as Pillow format names ("MPO" is a multi-picture JPEG).
    formats: frozenset[str] = field(default=DEFAULT_FORMATS)

    def __post_init__(self) -> None:
        if self.max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        if self.max_pixels < 1:
            raise ValueError("max_pixels must be at least 1")
        if self.max_tiff_pieces < 1:
            raise ValueError("max_tiff_pieces must be at least 1")
        object.__setattr__(self, "formats", frozenset(f.upper() for f in self.formats))


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


# --------------------------------------------------------------------------- sniffing


@dataclass(frozen=True)
class _Sniffed:
    pil_format: str | None  # the Pillow format to open it with; None if Pillow cannot
    label: str  # what to call it in messages


_RASTER_SIGNATURES: Final[tuple[tuple[bytes, _Sniffed], ...]] = (
    (b"\xff\xd8\xff", _Sniffed("JPEG", "JPEG")),
    (b"\x89PNG\r\n\x1a\n", _Sniffed("PNG", "PNG")),
    (b"GIF87a", _Sniffed("GIF", "GIF")),
    (b"GIF89a", _Sniffed("GIF", "GIF")),
    (b"II*\x00", _Sniffed("TIFF", "TIFF")),
    (b"MM\x00*", _Sniffed("TIFF", "TIFF")),
    (b"II+\x00", _Sniffed("TIFF", "TIFF")),
    (b"MM\x00+", _Sniffed("TIFF", "TIFF")),
    (b"BM", _Sniffed("BMP", "BMP")),
    (b"\x00\x00\x01\x00", _Sniffed("ICO", "ICO (icon)")),
    (b"\x00\x00\x02\x00", _Sniffed("CUR", "CUR (cursor)")),
    (b"8BPS", _Sniffed("PSD", "PSD (Photoshop)")),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", _Sniffed("JPEG2000", "JPEG 2000")),
    (b"\xff\x4f\xff\x51", _Sniffed("JPEG2000", "JPEG 2000")),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", _Sniffed(None, "JPEG XL")),
    (b"\xff\x0a", _Sniffed(None, "JPEG XL")),
    (b"icns", _Sniffed("ICNS", "ICNS (macOS icon)")),
    (b"DDS ", _Sniffed("DDS", "DDS (DirectDraw surface)")),
    (b"qoif", _Sniffed("QOI", "QOI")),
    (b"gimp xcf", _Sniffed(None, "XCF (GIMP)")),
    (b"v/1\x01", _Sniffed(None, "OpenEXR")),
    (b"#?RADIANCE", _Sniffed(None, "Radiance HDR")),
    (b"#?RGBE", _Sniffed(None, "Radiance HDR")),
    (b"farbfeld", _Sniffed(None, "farbfeld")),
    (b"FLIF", _Sniffed(None, "FLIF")),
    (b"BPG\xfb", _Sniffed(None, "BPG")),
    (b"\x59\xa6\x6a\x95", _Sniffed("SUN", "Sun raster")),
    (b"%PDF", _Sniffed(None, "PDF")),
    # Never handed to Pillow, even if allowed: its EPS reader runs Ghostscript.
    (b"%!PS", _Sniffed(None, "PostScript")),
    (b"\xc5\xd0\xd3\xc6", _Sniffed(None, "EPS (PostScript)")),
    (b"PK\x03\x04", _Sniffed(None, "a ZIP archive")),
    (b"\x1f\x8b", _Sniffed(None, "gzip-compressed data (SVGZ?)")),
    (b"7z\xbc\xaf\x27\x1c", _Sniffed(None, "a 7-Zip archive")),
    (b"Rar!\x1a\x07", _Sniffed(None, "a RAR archive")),
)

_NETPBM: Final[dict[bytes, str]] = {
    b"P1": "PBM",
    b"P4": "PBM",
    b"P2": "PGM",
    b"P5": "PGM",
    b"P3": "PPM",
    b"P6": "PPM",
    b"P7": "PAM",
    b"Pf": "PFM",
    b"PF": "PFM",
}

_HEIF_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})

# Base64 of the first bytes of common image formats.
_BASE64_IMAGE_PREFIXES: Final = ("/9j/", "ivborw0kggo", "r0lgod", "uklgr", "qk")


def sniff_format(data: bytes) -> tuple[str | None, str]:
    """Return ``(pil_format, label)`` for the leading bytes of ``data``.

    ``pil_format`` is the Pillow format that should open the data (None when Pillow cannot
    or the data is not a raster image); ``label`` names what was found for messages.
    """
    sniffed = _sniff(data)
    return sniffed.pil_format, sniffed.label


def _sniff(data: bytes) -> _Sniffed:
    if data[:4] == b"RIFF" and len(data) >= 12:
        if data[8:12] == b"WEBP":
            return _Sniffed("WEBP", "WebP")
        return _Sniffed(None, "a RIFF (audio or video) file")
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in _AVIF_BRANDS:
            return _Sniffed("AVIF", "AVIF")
        if brand in _HEIF_BRANDS:
            return _Sniffed(None, "HEIC/HEIF")
        return _Sniffed(None, "a video (MP4/QuickTime)")
    for signature, sniffed in _RASTER_SIGNATURES:
        if data.startswith(signature):
            return sniffed
    if len(data) >= 3:
        for signature, sniffed in _RASTER_SIGNATURES:
            if len(data) < len(signature) and signature.startswith(data):
                return _Sniffed(None, f"truncated {sniffed.label}")
    if data[:2] in _NETPBM and len(data) > 2 and data[2:3].isspace():
        name = _NETPBM[data[:2]]
        return _Sniffed(None if name == "PAM" else "PPM", f"{name} (Netpbm)")
    return _sniff_text(data)


def _sniff_text(data: bytes) -> _Sniffed:
    head = data[:4096]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="replace")
    else:
        text = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")
    if not text:
        return _Sniffed(None, "unknown")
    bad = sum(1 for ch in text if ch == "\ufffd" or (ch < " " and ch not in "\t\n\r\f\v"))
    if bad > len(text) // 100:
        return _Sniffed(None, "unknown")
    lowered = text.lstrip().lower()
    if "<svg" in lowered:
        return _Sniffed(None, "SVG")
    if lowered.startswith(("<!doctype html", "<html")) or "<html" in lowered[:1024]:
        return _Sniffed(None, "HTML")
    if lowered.startswith("<"):
        return _Sniffed(None, "XML")
    if lowered.startswith("data:"):
        return _Sniffed(None, "a data: URI")
    if lowered.startswith(_BASE64_IMAGE_PREFIXES) and " " not in lowered[:64]:
        return _Sniffed(None, "base64 text")
    if lowered.startswith(("{", "[")):
        return _Sniffed(None, "JSON")
    return _Sniffed(None, "text")


def _accepted(limits: Limits) -> str:
    names = [_FRIENDLY[f] for f in _FRIENDLY if f in limits.formats]
    if "JPEG" in limits.formats and "MPO" in names:
        names.remove("MPO")  # an MPO is a JPEG to the user
    names += sorted(f for f in limits.formats if f not in _FRIENDLY)
    return ", ".join(names) if names else "none"


def _refuse_sniffed(sniffed: _Sniffed, limits: Limits) -> DecodeError:
    send = f"send a raster image ({_accepted(limits)})"
    label = sniffed.label
    if label.startswith("truncated "):
        return CorruptImage(
            f"The {label.removeprefix('truncated ')} image is truncated: the data ends "
            "within its signature."
        )
    if label == "unknown":
        return CorruptImage(
            "The data is not a recognisable image: it starts with no known image signature, "
            f"so it is corrupt or in an unknown format; {send}."
        )
    if label == "text":
        return UnsupportedFormat(f"The data is text, not an image; {send}.")
    if label == "base64 text":
        return UnsupportedFormat(
            f"The data is base64-encoded text, not image bytes; decode it first and {send}."
        )
    if label == "a data: URI":
        return UnsupportedFormat(
            f"The data is a data: URI, not image bytes; decode it first and {send}."
        )
    if label in {"SVG", "HTML", "XML", "JSON"}:
        return UnsupportedFormat(f"{label} is not supported; {send}.")
    if label.startswith("a "):
        return UnsupportedFormat(f"The data is {label}, not an image; {send}.")
    return UnsupportedFormat(f"{label} images are not supported; {send}.")


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


# TIFF tags whose count is the number of pieces of the image: StripOffsets, TileOffsets.
_TIFF_PIECE_TAGS: Final = frozenset({273, 324})


def tiff_pieces(data: bytes) -> int | None:
    """How many strips and tiles the first image of a TIFF (or BigTIFF) declares, read from
    its first directory without parsing anything else; None when the header cannot be read
    (Pillow then reports what is wrong)."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 16:
        return None
    (magic,) = struct.unpack_from(f"{order}H", data, 2)
    big = magic == 43
    head, count_fmt, entry_fmt, entry_size = (8, "Q", "HHQ", 20) if big else (4, "H", "HHI", 12)
    (directory,) = struct.unpack_from(f"{order}{'Q' if big else 'I'}", data, head)
    try:
        (entries,) = struct.unpack_from(f"{order}{count_fmt}", data, directory)
        start = directory + struct.calcsize(count_fmt)
        pieces = 0
        for position in range(min(entries, (len(data) - start) // entry_size)):
            tag, _, count = struct.unpack_from(
                f"{order}{entry_fmt}", data, start + position * entry_size
            )
            if tag in _TIFF_PIECE_TAGS:
                pieces += count
    except struct.error:
        return None
    return pieces


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


# --------------------------------------------------------------------------- helpers


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


def _fmt_bytes(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} bytes"
