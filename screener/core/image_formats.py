"""What bytes :func:`screener.core.decode.decode` accepts before any pixel is decoded: the
limits, the format sniffed from the leading bytes (never a file name), the refusal of
non-images and formats outside the limits, and the TIFF piece count read from the header."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from screener.core.errors import (
    CorruptImage,
    DecodeError,
    UnsupportedFormat,
)

DEFAULT_FORMATS: Final = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})

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


def _fmt_bytes(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} bytes"
