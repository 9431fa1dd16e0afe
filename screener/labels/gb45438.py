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
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import subprocess
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final
from xml.sax.saxutils import quoteattr

from PIL import Image, ImageDraw, ImageFont, JpegImagePlugin, PngImagePlugin

from screener.core.decode import Limits, decode, sniff_format, to_rgb, upright_transpose
from screener.core.errors import LabelError

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

_DEFAULT_LIMITS: Final = Limits()
MAX_FIELD: Final = 200  # characters in provider, content_id and each extra value
MAX_EXTRA: Final = 20  # entries in extra
MAX_EXTRA_KEY: Final = 64
MAX_VISIBLE_TEXT: Final = 100
MAX_LABEL_JSON: Final = 64 * 1024  # characters of a stored label read back
MIN_TEXT_PX: Final = 12
TEXT_FRACTION: Final = 0.05  # of the shortest side (GB 45438-2025)

XMP_NAMESPACE: Final = "http://www.tc260.org.cn/ns/AIGC/1.0/"
_RDF_NS: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_PNG_KEY: Final = "AIGC"
_PNG_XMP_KEY: Final = "XML:com.adobe.xmp"
_USER_COMMENT: Final = 0x9286
_EXIF_IFD: Final = 0x8769
_ORIENTATION: Final = 0x0112
_ASCII_HEADER: Final = b"ASCII\x00\x00\x00"
_UNICODE_HEADER: Final = b"UNICODE\x00"
_MAX_XMP: Final = 60_000  # a JPEG APP1 segment holds at most 65,502 bytes of XMP
_MAX_EXIF: Final = 65_000

_CODES: Final = frozenset({"0", "1", "2", "3"})
# Standard fields that ``extra`` may fill (with a non-empty value).
_TOP_LEVEL_EXTRA: Final = ("ContentPropagator", "PropagateID", "ReservedCode2")
_CORE_KEYS: Final = frozenset({"ContentProducer", "ProduceID", "ReservedCode1"})
_OURS_KEYS: Final = frozenset({"ProducedAt", "Extra"})

_MEDIA_TYPES: Final = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_PNG_MODES: Final = frozenset({"1", "L", "LA", "P", "RGB", "RGBA"})

# Fonts with CJK glyphs at their usual places (Debian/Ubuntu, Fedora, Arch, macOS, Windows).
_CJK_FONT_PATHS: Final = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Medium.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-sans-cjk-fonts/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansSC-Regular.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-zenhei/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
    "C:/Windows/Fonts/simsun.ttc",
)
_CJK_PROBE: Final = "AI生成"
_DEFAULT_CJK_TEXT: Final = "AI生成 / AI-generated"
_DEFAULT_ASCII_TEXT: Final = "AI-generated"
_DEFAULT_FONT_NAME: Final = "Pillow default font"


# --------------------------------------------------------------------------- the label


@dataclass(frozen=True, kw_only=True)
class Label:
    """An implicit AI-content label (see the module docstring for how it is stored)."""

    ai_generated: bool = True
    provider: str  # provider name or code, 1..200 characters
    content_id: str  # content id, 1..200 characters
    produced_at: str | None = None  # ISO 8601; apply() fills in the current UTC time
    extra: dict[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.ai_generated, bool):
            raise LabelError("ai_generated must be true or false.")
        _check_text("provider", self.provider, MAX_FIELD, allow_empty=False)
        _check_text("content_id", self.content_id, MAX_FIELD, allow_empty=False)
        if self.produced_at is not None:
            _check_text("produced_at", self.produced_at, 64, allow_empty=False)
            try:
                datetime.fromisoformat(self.produced_at)
            except ValueError as exc:
                raise LabelError(
                    f"produced_at must be an ISO 8601 date and time, not {self.produced_at!r}."
                ) from exc
        if not isinstance(self.extra, dict):
            raise LabelError("extra must be a mapping of strings to strings.")
        if len(self.extra) > MAX_EXTRA:
            raise LabelError(f"extra has {len(self.extra)} entries; at most {MAX_EXTRA} allowed.")
        for key, value in self.extra.items():
            _check_text("an extra key", key, MAX_EXTRA_KEY, allow_empty=False)
            _check_text(f"extra[{key!r}]", value, MAX_FIELD, allow_empty=True)
        object.__setattr__(self, "extra", dict(self.extra))


@dataclass(frozen=True)
class Labelled:
    """The result of :func:`apply`."""

    data: bytes  # the labelled image bytes
    format: str  # "PNG", "JPEG" or "WEBP"
    media_type: str
    label: Label  # the label as written (produced_at filled in)
    # The font the visible label was drawn with (a file path, or "Pillow default font
    # (Aileron Regular)"); None when no visible label was asked for.
    visible_font: str | None = None
    # The banner's (left, top, right, bottom) in the output image; None without one.
    visible_box: tuple[int, int, int, int] | None = None


def _check_text(name: str, value: object, limit: int, *, allow_empty: bool) -> None:
    if not isinstance(value, str):
        raise LabelError(f"{name} must be a string, not {type(value).__name__}.")
    if not allow_empty and not value.strip():
        raise LabelError(f"{name} must not be empty.")
    if len(value) > limit:
        raise LabelError(f"{name} is {len(value)} characters long; at most {limit} allowed.")
    for ch in value:
        if unicodedata.category(ch) in {"Cc", "Cs"} or ch in "\ufffe\uffff":
            raise LabelError(f"{name} contains a control or invalid character ({ch!r}).")


# --------------------------------------------------------------------------- encoding


def _core(label: Label) -> dict[str, str]:
    """The label as the standard's JSON object (field order as in GB 45438-2025)."""
    extra = dict(label.extra)
    for key in _CORE_KEYS:
        if key in extra:
            raise LabelError(
                f"extra may not contain {key!r}: it is written from the label's own fields."
            )
    code = "1" if label.ai_generated else "0"
    if "Label" in extra:
        given = extra.pop("Label")
        if given not in {"1", "2", "3"} or not label.ai_generated:
            raise LabelError(
                'extra["Label"] must be "1", "2" or "3" (generated, possibly, suspected) '
                "and needs ai_generated=True."
            )
        code = given
    top: dict[str, str] = {}
    for key in _TOP_LEVEL_EXTRA:
        if key in extra:
            value = extra.pop(key)
            if not value:
                raise LabelError(f"extra[{key!r}] must not be empty.")
            top[key] = value
    ours: dict[str, Any] = {"ProducedAt": label.produced_at}
    if extra:
        ours["Extra"] = extra
    return {
        "Label": code,
        "ContentProducer": label.provider,
        "ProduceID": label.content_id,
        "ReservedCode1": _dumps(ours, ascii_only=False),
        "ContentPropagator": top.get("ContentPropagator", ""),
        "PropagateID": top.get("PropagateID", ""),
        "ReservedCode2": top.get("ReservedCode2", ""),
    }


def _dumps(obj: object, *, ascii_only: bool) -> str:
    return json.dumps(obj, ensure_ascii=ascii_only, separators=(",", ":"))


def _xmp_description(core_json: str) -> str:
    return (
        f'<rdf:Description rdf:about="" xmlns:TC260="{XMP_NAMESPACE}" '
        f"TC260:AIGC={quoteattr(core_json)}/>"
    )


def _xmp_packet(core_json: str, existing: bytes | str | None) -> bytes:
    """Our XMP packet, or ``existing`` with our description added when that is safe."""
    description = _xmp_description(core_json)
    merged = _merge_xmp(existing, description)
    if merged is not None:
        return merged
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        f' <rdf:RDF xmlns:rdf="{_RDF_NS}">\n'
        f"  {description}\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    ).encode()


def _merge_xmp(existing: bytes | str | None, description: str) -> bytes | None:
    if not existing:
        return None
    if isinstance(existing, bytes):
        try:
            text = existing.decode("utf-8")
        except UnicodeDecodeError:
            return None
    else:
        text = existing
    text = text.rstrip("\x00 \t\r\n")
    end = text.rfind("</rdf:RDF>")
    if (
        end < 0
        or XMP_NAMESPACE in text
        or f'xmlns:rdf="{_RDF_NS}"' not in text.replace("'", '"')
        or _has_dtd(text)
    ):
        return None
    merged = f"{text[:end]}  {description}\n {text[end:]}"
    try:
        ET.fromstring(_strip_xmp(merged))
    except ET.ParseError:
        return None
    data = merged.encode("utf-8")
    return data if len(data) <= _MAX_XMP else None


def _user_comment(core: dict[str, str]) -> bytes:
    return _ASCII_HEADER + _dumps({"AIGC": core}, ascii_only=True).encode("ascii")


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


# --------------------------------------------------------------------------- visible label


@dataclass(frozen=True)
class _FontChoice:
    name: str  # what Labelled.visible_font says
    path: str | None  # None: Pillow's built-in font
    index: int = 0


def _check_visible_text(text: object) -> None:
    if not isinstance(text, str):
        raise LabelError("visible_text must be a string.")
    if not text.strip():
        raise LabelError("visible_text must not be empty.")
    if len(text) > MAX_VISIBLE_TEXT:
        raise LabelError(f"visible_text is longer than {MAX_VISIBLE_TEXT} characters.")
    if any(unicodedata.category(ch) in {"Cc", "Cs"} and ch != "\n" for ch in text):
        raise LabelError("visible_text contains a control character.")


def _load_font(choice: _FontChoice, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if choice.path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(choice.path, size, index=choice.index)


def _ink(
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str
) -> tuple[tuple[int, ...], bytes]:
    bbox = tuple(int(v) for v in font.getbbox(text))
    width, height = max(1, bbox[2] - bbox[0]), max(1, bbox[3] - bbox[1])
    canvas = Image.new("L", (width, height))
    ImageDraw.Draw(canvas).text((-bbox[0], -bbox[1]), text, font=font, fill=255)
    return bbox, canvas.tobytes()


def _covers(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> bool:
    """Whether ``font`` has a glyph for every visible character of ``text``.

    A missing glyph draws as the font's "notdef" glyph, the same as a private-use character.
    """
    try:
        missing = _ink(font, "\U000f0000")
        for ch in set(text):
            if ch.isspace():
                continue
            drawn = _ink(font, ch)
            if drawn == missing or not any(drawn[1]):
                return False
    except (OSError, UnicodeEncodeError, ValueError):
        return False
    return True


@lru_cache(maxsize=1)
def find_cjk_font() -> tuple[str, int] | None:
    """The path and face index of an installed font that draws "AI生成"; None if none."""
    candidates = [p for p in _CJK_FONT_PATHS if os.path.isfile(p)]
    fc_list = shutil.which("fc-list")
    if fc_list:
        try:
            listed = subprocess.run(
                [fc_list, ":lang=zh", "--format=%{file}\\n"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.splitlines()
        except (OSError, subprocess.SubprocessError):
            listed = []
        candidates += sorted({p.strip() for p in listed if p.strip()} - set(candidates))
    for path in candidates:
        found = _cjk_face(path)
        if found is not None:
            return path, found
    return None


def _cjk_face(path: str) -> int | None:
    """The face of ``path`` to use (Simplified Chinese preferred in a collection)."""
    covering: list[int] = []
    for index in range(10 if path.lower().endswith((".ttc", ".otc")) else 1):
        try:
            font = ImageFont.truetype(path, 24, index=index)
        except OSError:
            break
        if _covers(font, _CJK_PROBE):
            family = str(font.getname()[0] or "")
            if re.search(r"\bSC\b|GB|Simplified|Hei|Sans CJK SC", family):
                return index
            covering.append(index)
    return covering[0] if covering else None


def _font_choices(font_path: str | os.PathLike[str] | None) -> list[_FontChoice]:
    if font_path is not None:
        path = os.fspath(font_path)
        return [_FontChoice(path, path)]
    choices = []
    cjk = find_cjk_font()
    if cjk is not None:
        choices.append(_FontChoice(cjk[0], cjk[0], cjk[1]))
    default = ImageFont.load_default(MIN_TEXT_PX)
    if isinstance(default, ImageFont.FreeTypeFont):
        family, style = default.getname()
        name = f"{_DEFAULT_FONT_NAME} ({family} {style})"
    else:
        name = f"{_DEFAULT_FONT_NAME} (bitmap)"
    choices.append(_FontChoice(name, None))
    return choices


def _pick_font(
    text: str | None, font_path: str | os.PathLike[str] | None
) -> tuple[_FontChoice, str]:
    for choice in _font_choices(font_path):
        try:
            probe = _load_font(choice, 24)
        except OSError as exc:
            raise LabelError(f"The font {choice.name} cannot be loaded.") from exc
        if text is None:
            if _covers(probe, _CJK_PROBE):
                return choice, _DEFAULT_CJK_TEXT
            if choice.path is None or font_path is not None:
                return choice, _DEFAULT_ASCII_TEXT
        elif _covers(probe, text):
            return choice, text
    raise LabelError(
        "No available font can draw the visible label text; install a font with those "
        "characters or pass font_path."
    )


def _glyph_height(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> int:
    heights = [0]
    for ch in set(text):
        if not ch.isspace():
            bbox = font.getbbox(ch)
            heights.append(int(bbox[3] - bbox[1]))
    return max(heights)


def _text_mask(choice: _FontChoice, text: str, target: int, max_width: int) -> Image.Image:
    """The text drawn white on black, glyphs at least ``target`` px tall where it fits."""
    layouts = [text]
    if " / " in text:
        layouts.append(text.replace(" / ", "\n"))
    size = target
    font = _load_font(choice, size)
    if not isinstance(font, ImageFont.FreeTypeFont):  # no FreeType: scale the bitmap font
        return _bitmap_mask(font, layouts, target, max_width)
    for _ in range(8):
        height = _glyph_height(font, text)
        if height >= target:
            break
        size = max(size + 1, math.ceil(size * target / max(height, 1)))
        font = _load_font(choice, size)
    while True:
        for layout in layouts:
            mask = _render(font, layout)
            if mask.width <= max_width:
                return mask
        widest = _render(font, layouts[-1]).width
        smaller = min(size - 1, math.floor(size * max_width / widest))
        if smaller < 6:
            raise LabelError("The image is too small for a visible label.")
        size = smaller
        font = _load_font(choice, size)


def _render(font: ImageFont.FreeTypeFont | ImageFont.ImageFont, text: str) -> Image.Image:
    scratch = ImageDraw.Draw(Image.new("L", (1, 1)))
    spacing = max(2, round(_glyph_height(font, text) * 0.25))
    left, top, right, bottom = (
        int(v) for v in scratch.multiline_textbbox((0, 0), text, font=font, spacing=spacing)
    )
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)))
    ImageDraw.Draw(mask).multiline_text((-left, -top), text, font=font, fill=255, spacing=spacing)
    return mask


def _bitmap_mask(
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    layouts: list[str],
    target: int,
    max_width: int,
) -> Image.Image:
    factor = max(1, math.ceil(target / max(1, _glyph_height(font, layouts[0]))))
    while True:
        for layout in layouts:
            mask = _render(font, layout)
            if mask.width * factor <= max_width:
                return mask.resize(
                    (mask.width * factor, mask.height * factor), Image.Resampling.NEAREST
                )
        if factor == 1:
            raise LabelError("The image is too small for a visible label.")
        factor -= 1


def _draw_banner(
    image: Image.Image, text: str | None, font_path: str | os.PathLike[str] | None
) -> tuple[Image.Image, str, tuple[int, int, int, int]]:
    width, height = image.size
    short = min(width, height)
    target = max(MIN_TEXT_PX, math.ceil(short * TEXT_FRACTION))
    pad = max(4, round(short * 0.02))
    inner = max(3, round(target * 0.35))
    choice, text = _pick_font(text, font_path)
    mask = _text_mask(choice, text, target, width - 2 * pad - 2 * inner)
    box_w, box_h = mask.width + 2 * inner, mask.height + 2 * inner
    if box_h + 2 * pad > height:
        raise LabelError(f"The image ({width}x{height}) is too small for a visible label.")
    left, top = pad, height - pad - box_h
    box = (left, top, left + box_w, top + box_h)
    overlay = Image.new("RGBA", (box_w, box_h), (0, 0, 0, 150))
    overlay.paste((255, 255, 255, 235), (inner, inner), mask)
    region = Image.alpha_composite(image.crop(box).convert("RGBA"), overlay)
    out = image.copy()
    out.paste(region.convert(image.mode), box[:2])
    return out, choice.name, box


# --------------------------------------------------------------------------- read


def read(data: bytes, *, limits: Limits = _DEFAULT_LIMITS) -> Label | None:
    """The implicit label in the image ``data``; None when it carries none.

    The bytes are validated by :func:`screener.core.decode.decode` first (its errors propagate).
    Places are tried in order (PNG ``AIGC`` text, XMP, EXIF ``UserComment``) and the first
    valid label is returned; when labels are present but none is valid,
    :class:`~screener.core.errors.LabelError` says what is wrong with the first.
    """
    data = bytes(data)
    decoded = decode(data, limits=limits, max_side=64)
    pil_format = sniff_format(data)[0] or decoded.format
    with Image.open(io.BytesIO(data), formats=[pil_format]) as im:
        im.load()
        info = dict(im.info)
        text = dict(getattr(im, "text", {})) if decoded.format == "PNG" else {}
        try:
            exif: Image.Exif | None = im.getexif()
        except Exception:  # an unreadable EXIF block holds no label
            exif = None

    found: list[tuple[str, str]] = []  # (where, JSON text)
    aigc = text.get(_PNG_KEY)
    if isinstance(aigc, str):
        found.append(("PNG AIGC text chunk", aigc))
    errors: list[LabelError] = []
    for key in ("xmp", _PNG_XMP_KEY):
        packet = info.get(key)
        if isinstance(packet, (bytes, str)) and packet:
            try:
                found.extend(("XMP packet", value) for value in _xmp_values(packet))
            except LabelError as exc:
                errors.append(exc)
    if exif is not None:
        comment = _user_comment_text(exif)
        if comment is not None:
            found.append(("EXIF UserComment", comment))

    for where, value in found:
        try:
            return _parse(value, where)
        except LabelError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
    return None


def _strip_xmp(text: str) -> str:
    return text.strip("\ufeff\x00 \t\r\n")


def _has_dtd(text: str) -> bool:
    return "<!DOCTYPE" in text or "<!ENTITY" in text


def _xmp_values(packet: bytes | str) -> list[str]:
    """The ``TC260:AIGC`` values (attributes or elements) in an XMP packet."""
    if isinstance(packet, bytes):
        if XMP_NAMESPACE.encode() not in packet:
            return []
        text = packet.decode("utf-8", errors="replace")
    else:
        text = packet
    if XMP_NAMESPACE not in text:
        return []
    text = _strip_xmp(text)
    if len(text) > 4 * MAX_LABEL_JSON or _has_dtd(text):
        raise LabelError("The XMP packet holding the AI-content label is malformed.")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise LabelError(
            "The XMP packet holding the AI-content label is not well-formed XML."
        ) from exc
    name = f"{{{XMP_NAMESPACE}}}AIGC"
    values: list[str] = []
    for element in root.iter():
        if name in element.attrib:
            values.append(element.attrib[name])
        if element.tag == name:
            values.append("".join(element.itertext()).strip())
    return values


def _user_comment_text(exif: Image.Exif) -> str | None:
    """The EXIF UserComment when it looks like a label (a JSON object naming AIGC)."""
    try:
        raw = exif.get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    except Exception:  # an unreadable Exif IFD holds no label
        return None
    if isinstance(raw, str):
        text = raw
    elif isinstance(raw, bytes) and len(raw) >= 8:
        header, body = raw[:8], raw[8:]
        unicode = header == _UNICODE_HEADER
        text = _utf16(body) if unicode else body.decode("utf-8", errors="replace")
    else:
        return None
    text = text.strip("\x00 \t\r\n")
    if text.startswith("{") and "AIGC" in text:
        return text
    return None


def _utf16(body: bytes) -> str:
    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        return body.decode("utf-16", errors="replace")
    for codec in ("utf-16-be", "utf-16-le"):
        text = body.decode(codec, errors="replace")
        if text.lstrip("\x00 ").startswith("{"):
            return text
    return body.decode("utf-16-be", errors="replace")


def _parse(text: str, where: str) -> Label:
    def bad(why: str) -> LabelError:
        return LabelError(f"The AI-content label in the {where} is malformed: {why}.")

    if len(text) > MAX_LABEL_JSON:
        raise bad(f"it is longer than {MAX_LABEL_JSON} characters")
    try:
        obj = json.loads(text)
        if isinstance(obj, dict) and "AIGC" in obj:
            obj = obj["AIGC"]
            if isinstance(obj, str):
                obj = json.loads(obj)
    except (ValueError, RecursionError) as exc:
        raise bad("it is not valid JSON") from exc
    if not isinstance(obj, dict):
        raise bad("it is not a JSON object")
    code = obj.get("Label")
    if not isinstance(code, str) or code not in _CODES:
        raise bad('"Label" must be one of the strings "0", "1", "2" or "3"')
    fields: dict[str, str] = {}
    for key in ("ContentProducer", "ProduceID", "ReservedCode1", *_TOP_LEVEL_EXTRA):
        value = obj.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise bad(f"{key!r} must be a string")
        fields[key] = value
    extra: dict[str, str] = {}
    produced_at: str | None = None
    reserved = fields["ReservedCode1"]
    ours = _ours(reserved)
    if ours is not None:
        stamp = ours.get("ProducedAt")
        if stamp is not None and not isinstance(stamp, str):
            raise bad('"ProducedAt" must be a string')
        produced_at = stamp
        more = ours.get("Extra", {})
        if not isinstance(more, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in more.items()
        ):
            raise bad('"Extra" must be an object of strings')
        extra.update(more)
    elif reserved:
        extra["ReservedCode1"] = reserved
    if code in {"2", "3"}:
        extra["Label"] = code
    for key in _TOP_LEVEL_EXTRA:
        if fields[key]:
            extra[key] = fields[key]
    try:
        return Label(
            ai_generated=code != "0",
            provider=fields["ContentProducer"],
            content_id=fields["ProduceID"],
            produced_at=produced_at,
            extra=extra,
        )
    except LabelError as exc:
        raise bad(str(exc).rstrip(".")) from exc


def _ours(reserved: str) -> dict[str, Any] | None:
    """ReservedCode1 as written by :func:`apply`, or None when it is something else."""
    if not reserved.startswith("{"):
        return None
    try:
        value = json.loads(reserved)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, dict) and value and set(value) <= _OURS_KEYS:
        return value
    return None
