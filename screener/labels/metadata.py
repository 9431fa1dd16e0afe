"""The implicit label as bytes: the standard's JSON object, the XMP packet and the EXIF
``UserComment`` that carry it, and the keys and places each format keeps them under."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any, Final
from xml.sax.saxutils import quoteattr

from screener.core.decode import Limits
from screener.core.errors import LabelError
from screener.labels.label import Label

_DEFAULT_LIMITS: Final = Limits()
XMP_NAMESPACE: Final = "http://www.tc260.org.cn/ns/AIGC/1.0/"
_RDF_NS: Final = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_PNG_KEY: Final = "AIGC"
_PNG_XMP_KEY: Final = "XML:com.adobe.xmp"
_USER_COMMENT: Final = 0x9286
_EXIF_IFD: Final = 0x8769
_ASCII_HEADER: Final = b"ASCII\x00\x00\x00"
_MAX_XMP: Final = 60_000  # a JPEG APP1 segment holds at most 65,502 bytes of XMP
# Standard fields that ``extra`` may fill (with a non-empty value).
_TOP_LEVEL_EXTRA: Final = ("ContentPropagator", "PropagateID", "ReservedCode2")
_CORE_KEYS: Final = frozenset({"ContentProducer", "ProduceID", "ReservedCode1"})


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


def _strip_xmp(text: str) -> str:
    return text.strip("\ufeff\x00 \t\r\n")


def _has_dtd(text: str) -> bool:
    return "<!DOCTYPE" in text or "<!ENTITY" in text
