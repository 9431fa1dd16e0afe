"""Reading an implicit label back: from the ``AIGC`` text chunk, then XMP, then EXIF
``UserComment``, bare or wrapped, refusing what is malformed with :class:`LabelError`."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from typing import Any, Final

from PIL import Image

from screener.core.decode import Limits, decode, sniff_format
from screener.core.errors import LabelError
from screener.labels.label import Label
from screener.labels.metadata import (
    _DEFAULT_LIMITS,
    _EXIF_IFD,
    _PNG_KEY,
    _PNG_XMP_KEY,
    _TOP_LEVEL_EXTRA,
    _USER_COMMENT,
    XMP_NAMESPACE,
    _has_dtd,
    _strip_xmp,
)

MAX_LABEL_JSON: Final = 64 * 1024  # characters of a stored label read back
_UNICODE_HEADER: Final = b"UNICODE\x00"
_CODES: Final = frozenset({"0", "1", "2", "3"})
_OURS_KEYS: Final = frozenset({"ProducedAt", "Extra"})


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
