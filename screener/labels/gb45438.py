"""Write and read the labels China requires on AI-generated images.

The *Measures for Identifying AI-Generated Synthetic Content* (in force from 2025-09-01) and
the national standard GB 45438-2025 ask a provider to put an **implicit label** in the file's
metadata (that the content is AI-generated, the provider's name or code and a content id) and,
where appropriate, an **explicit label**: visible text whose height is at least 5% of the
image's shortest side.

The implicit label is one JSON object with the standard's field names::

    {"Label": "1", "ContentProducer": provider, "ProduceID": content_id,
     "ReservedCode1": "...", "ContentPropagator": "", "PropagateID": "", "ReservedCode2": ""}

* ``Label``: ``"1"`` for AI-generated (``ai_generated=True``). The standard also has ``"2"``
  (possibly) and ``"3"`` (suspected): write them with ``extra={"Label": "2"}``; reading them
  gives ``ai_generated=True`` and that ``extra`` entry back. ``"0"`` (``ai_generated=False``)
  is outside the standard's codes and means "declared not AI-generated".
* ``ReservedCode1`` (reserved for the producer) holds a compact JSON object
  ``{"ProducedAt": produced_at, "Extra": {...}}`` with the rest of ``extra``. A foreign
  ``ReservedCode1`` that is not such an object is read into ``extra["ReservedCode1"]``
  (and such a label cannot be written back as is: the key is ours).
* ``ContentPropagator``, ``PropagateID`` and ``ReservedCode2`` are written empty unless
  ``extra`` names them (then they go to these top-level fields, and come back in ``extra``).

Where it is stored:

========  ==================================================================================
PNG       an ``iTXt`` chunk with keyword ``AIGC`` (UTF-8, uncompressed) holding the object,
          and an XMP packet (``iTXt`` ``XML:com.adobe.xmp``) with the attribute
          ``TC260:AIGC`` in the namespace ``http://www.tc260.org.cn/ns/AIGC/1.0/``.
JPEG      the XMP packet in an APP1 segment, and EXIF ``UserComment`` (0x9286, in the Exif
          IFD) as ``ASCII\\0\\0\\0`` + ``{"AIGC": {...}}`` with non-ASCII characters escaped
          as ``\\uXXXX`` (so it is plain ASCII and round-trips any text exactly).
WebP      the XMP packet and the EXIF ``UserComment``, as for JPEG.
========  ==================================================================================

:func:`read` looks in the ``AIGC`` text chunk, then XMP (attribute or element
``TC260:AIGC``), then EXIF ``UserComment``, and accepts the object bare or wrapped as
``{"AIGC": {...}}`` (or ``{"AIGC": "<json string>"}``) in each.

What :func:`apply` keeps and changes:

* Input bytes first go through :func:`screener.core.decode.decode`, so oversized images, bombs,
  corrupt data, SVG and the like fail with the usual :class:`~screener.core.errors.DecodeError`
  subclasses. The validated bytes are then reopened with Pillow and saved again.
* JPEG (and MPO) is saved as JPEG at quality 95 with the source's chroma subsampling, ICC
  profile, EXIF (orientation included; our ``UserComment`` replaces any other),
  comment, DPI and progressive mode. Other APP segments (C2PA/JUMBF, MPF, IPTC) and the
  EXIF thumbnail (IFD1) are not carried.
* PNG is saved as PNG with the same pixels, mode, palette, transparency, ICC profile, EXIF
  (``eXIf``), DPI and text chunks (old ``AIGC`` and XMP chunks are replaced). Pillow reads
  16-bit-per-channel colour PNGs as 8-bit and APNG as its first frame, so those lose depth or
  animation. An existing XMP packet is kept, with our ``rdf:Description`` added, when it is
  plain RDF without our namespace; otherwise ours replaces it.
* WebP stays WebP (lossless when the source is VP8L, else quality 95), first frame only.
* GIF, BMP, TIFF and other accepted formats become PNG (first frame only; animation is out
  of scope). Pixel modes PNG cannot hold (CMYK, 32-bit, float...) become RGB or RGBA as
  :func:`screener.core.decode.to_rgb` converts them.

The explicit label (``visible=True``) is a semi-transparent dark banner with light text at
the bottom left of the upright image (for a JPEG with an EXIF rotation the pixels are turned
upright first and the orientation tag set to 1). Glyphs are sized so the tallest character
of the text is at least 5% of the shortest side (and at least 12 px). The default text is
``"AI生成 / AI-generated"`` when a font with CJK glyphs is installed (known paths, then
``fc-list :lang=zh``), else ``"AI-generated"`` in Pillow's built-in font.

The code is cut by concept: :mod:`~screener.labels.label` (the label as a value),
:mod:`~screener.labels.metadata` (the implicit label per format),
:mod:`~screener.labels.visible` (the explicit label's drawing) and
:mod:`~screener.labels.reading` (reading a label back); :func:`apply` is here.
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from typing import Any, Final

from PIL import Image, JpegImagePlugin, PngImagePlugin

from screener.core.decode import Limits, decode, sniff_format, to_rgb, upright_transpose
from screener.core.errors import LabelError
from screener.labels.label import (
    MAX_EXTRA,
    MAX_FIELD,
    Label,
    Labelled,
)
from screener.labels.metadata import (
    _DEFAULT_LIMITS,
    _EXIF_IFD,
    _PNG_KEY,
    _PNG_XMP_KEY,
    _USER_COMMENT,
    XMP_NAMESPACE,
    _core,
    _dumps,
    _user_comment,
    _xmp_packet,
)
from screener.labels.reading import read
from screener.labels.visible import (
    _check_visible_text,
    _draw_banner,
    find_cjk_font,
)

__all__ = [
    "MAX_EXTRA",
    "MAX_FIELD",
    "XMP_NAMESPACE",
    "Label",
    "Labelled",
    "apply",
    "find_cjk_font",
    "read",
]
_ORIENTATION: Final = 0x0112
_MAX_EXIF: Final = 65_000
_MEDIA_TYPES: Final = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_PNG_MODES: Final = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})


# --------------------------------------------------------------------------- apply


def apply(
    data: bytes,
    label: Label,
    *,
    visible: bool = False,
    visible_text: str | None = None,
    limits: Limits = _DEFAULT_LIMITS,
    font_path: str | os.PathLike[str] | None = None,
) -> Labelled:
    """Return the image in ``data`` with ``label`` written into its metadata.

    ``visible`` adds the explicit label banner; ``visible_text`` replaces its default text
    (1..100 characters, newlines allowed); ``font_path`` names the font file to draw it with
    instead of looking for one. See the module docstring for formats and what is kept.
    """
    if not isinstance(label, Label):
        raise TypeError("label must be a Label")
    if visible_text is not None:
        _check_visible_text(visible_text)
    if label.produced_at is None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        label = Label(
            ai_generated=label.ai_generated,
            provider=label.provider,
            content_id=label.content_id,
            produced_at=now,
            extra=label.extra,
        )
    core = _core(label)

    data = bytes(data)
    decoded = decode(data, limits=limits)
    pil_format = sniff_format(data)[0] or decoded.format
    source = decoded.format
    out_format = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WEBP"}.get(source, "PNG")

    with Image.open(io.BytesIO(data), formats=[pil_format]) as opened:
        opened.seek(0)
        opened.load()
        info = dict(opened.info)
        exif = Image.Exif()
        if source in {"JPEG", "MPO", "PNG", "WEBP"}:
            try:
                exif = opened.getexif()
            except Exception:  # unreadable EXIF is dropped rather than refused
                exif = Image.Exif()
        png_text = dict(getattr(opened, "text", {})) if source == "PNG" else {}
        sampling = JpegImagePlugin.get_sampling(opened) if source in {"JPEG", "MPO"} else -1
        image = opened.copy()

    image, transparency = _saveable(image, out_format, source, info)
    font_name: str | None = None
    box: tuple[int, int, int, int] | None = None
    if visible:
        orientation = exif.get(_ORIENTATION)
        transpose = upright_transpose(orientation)
        if transpose is not None:
            image = image.transpose(transpose)
            exif[_ORIENTATION] = 1
        if image.mode not in {"L", "LA", "RGB", "RGBA", "CMYK"}:
            rgb, alpha = to_rgb(image)
            if alpha is not None:
                rgb.putalpha(alpha)
            image, transparency = rgb, None
        image, font_name, box = _draw_banner(image, visible_text, font_path)

    xmp_existing = info.get("xmp") if out_format != "PNG" else info.get(_PNG_XMP_KEY)
    if out_format == "PNG" and source != "PNG":
        xmp_existing = None  # from another container: not trusted to be a plain packet
    xmp = _xmp_packet(_dumps(core, ascii_only=False), xmp_existing)

    out = io.BytesIO()
    params: dict[str, Any] = {}
    icc = info.get("icc_profile")
    if isinstance(icc, bytes) and icc:
        params["icc_profile"] = icc
    dpi = info.get("dpi")
    if isinstance(dpi, tuple) and len(dpi) == 2:
        params["dpi"] = tuple(round(float(v)) or 72 for v in dpi)

    if out_format == "PNG":
        pnginfo = PngImagePlugin.PngInfo()
        for key, value in png_text.items():
            if key in {_PNG_KEY, _PNG_XMP_KEY} or not isinstance(value, str):
                continue
            pnginfo.add_text(key, value)
        pnginfo.add_itxt(_PNG_KEY, _dumps(core, ascii_only=False), zip=False)
        pnginfo.add_itxt(_PNG_XMP_KEY, xmp.decode("utf-8"), zip=False)
        params["pnginfo"] = pnginfo
        if len(exif):
            params["exif"] = exif
        if transparency is not None:
            params["transparency"] = transparency
    else:
        exif.get_ifd(_EXIF_IFD)[_USER_COMMENT] = _user_comment(core)
        exif_bytes = exif.tobytes()
        if len(exif_bytes) > _MAX_EXIF:
            raise LabelError(
                "The image's existing EXIF data is too large to add the label to "
                f"({len(exif_bytes)} bytes)."
            )
        params["exif"] = exif_bytes
        params["xmp"] = xmp
        if out_format == "JPEG":
            params["quality"] = 95
            if sampling >= 0 and image.mode == "RGB":
                params["subsampling"] = sampling
            if info.get("progressive") or info.get("progression"):
                params["progressive"] = True
            comment = info.get("comment")
            if isinstance(comment, bytes) and comment:
                params["comment"] = comment
        elif _webp_lossless(data):
            params.update(lossless=True, exact=True)
        else:
            params["quality"] = 95
    image.save(out, out_format, **params)
    return Labelled(
        data=out.getvalue(),
        format=out_format,
        media_type=_MEDIA_TYPES[out_format],
        label=label,
        visible_font=font_name,
        visible_box=box,
    )


def _saveable(
    image: Image.Image, out_format: str, source: str, info: dict[Any, Any]
) -> tuple[Image.Image, object]:
    """``image`` in a mode ``out_format`` can store, and the PNG transparency to keep."""
    transparency = info.get("transparency")
    if out_format == "JPEG":
        keep = image.mode in {"L", "RGB", "CMYK"}
    elif out_format == "WEBP":
        keep = image.mode in {"RGB", "RGBA"}
    else:
        keep = image.mode in _PNG_MODES or (source == "PNG" and image.mode == "I;16")
    if keep:
        if image.mode not in {"1", "L", "P", "RGB", "I;16"}:
            transparency = None
        return image, transparency
    rgb, alpha = to_rgb(image)
    if alpha is not None:
        rgb.putalpha(alpha)
    return rgb, None


def _webp_lossless(data: bytes) -> bool:
    """Whether the (first) image in a WebP file is VP8L, lossless."""
    pos = 12
    while pos + 8 <= len(data):
        fourcc = data[pos : pos + 4]
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if fourcc == b"VP8L":
            return True
        if fourcc == b"VP8 ":
            return False
        if fourcc == b"ANMF":
            pos += 8 + 16  # into the frame's own chunks
            continue
        pos += 8 + size + (size & 1)
    return False
