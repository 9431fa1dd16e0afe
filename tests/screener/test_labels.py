"""Tests for screener.labels.gb45438: implicit (metadata) and visible AI-content labels."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import unicodedata
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFont, PngImagePlugin

from screener.core import samples
from screener.core.errors import (
    CorruptImage,
    EmptyImage,
    InputError,
    LabelError,
    UnsupportedFormat,
)
from screener.labels import gb45438 as labels
from screener.labels.gb45438 import XMP_NAMESPACE, Label, Labelled, apply, read

CHINESE = "某某科技有限公司"
DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
USER_COMMENT = 0x9286
EXIF_IFD = 0x8769
XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\x00"


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def pixels(data: bytes) -> npt.NDArray[np.int16]:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im, dtype=np.int16)


def png_text(data: bytes) -> dict[str, str]:
    with Image.open(io.BytesIO(data)) as im:
        assert isinstance(im, PngImagePlugin.PngImageFile)
        return dict(im.text)


def label(**changes: Any) -> Label:
    fields: dict[str, Any] = {"provider": CHINESE, "content_id": "gen-0001"}
    fields.update(changes)
    return Label(**fields)


def without_time(found: Label | None) -> Label:
    assert found is not None
    assert found.produced_at is not None
    return dataclasses.replace(found, produced_at=None)


def aigc_json(core: dict[str, Any]) -> str:
    return json.dumps(core, ensure_ascii=False)


def png_with_text(chunks: dict[str, str]) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_itxt(key, value)
    return encode(samples.drawing(1), "PNG", pnginfo=info)


GOOD_CORE = {"Label": "1", "ContentProducer": "acme", "ProduceID": "id-1"}


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("rgb", lambda: samples.scene(1)),
        ("rgba", lambda: samples.drawing(2, transparent=True)),
        ("gray", lambda: samples.scene(3).convert("L")),
        ("palette", lambda: samples.drawing(4).convert("P")),
    ],
)
def test_png_round_trip_keeps_pixels_exactly(name: str, make: Any) -> None:
    source = make()
    data = encode(source, "PNG")
    out = apply(data, label())
    assert (out.format, out.media_type) == ("PNG", "image/png")
    assert out.visible_font is None
    assert out.visible_box is None
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.mode == source.mode
    assert np.array_equal(pixels(out.data), pixels(data))
    assert read(out.data) == out.label
    assert without_time(read(out.data)) == label()


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_jpeg_round_trip_keeps_pixels_close(mode: str) -> None:
    data = encode(samples.scene(5).convert(mode), "JPEG", quality=90)
    out = apply(data, label())
    assert (out.format, out.media_type) == ("JPEG", "image/jpeg")
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.mode == mode
    diff = np.abs(pixels(out.data) - pixels(data))
    assert diff.mean() < 1.5
    assert read(out.data) == out.label
    assert without_time(read(out.data)) == label()


def test_explicit_fields_round_trip_exactly() -> None:
    given_label = Label(
        provider="91110000MA00000000",
        content_id="内容-42",
        produced_at="2025-09-01T08:00:00+08:00",
        extra={"model": "画师-v2", "ContentPropagator": "某平台", "PropagateID": "p-7"},
    )
    for fmt in ("PNG", "JPEG", "WEBP"):
        out = apply(encode(samples.scene(6), fmt), given_label)
        assert out.label == given_label
        assert read(out.data) == given_label


def test_possibly_and_not_generated_codes_round_trip() -> None:
    data = encode(samples.scene(7), "PNG")
    possibly = label(extra={"Label": "2"}, produced_at="2025-01-01T00:00:00Z")
    assert read(apply(data, possibly).data) == possibly
    assert json.loads(png_text(apply(data, possibly).data)["AIGC"])["Label"] == "2"
    human = label(ai_generated=False, produced_at="2025-01-01T00:00:00Z")
    assert read(apply(data, human).data) == human
    with pytest.raises(LabelError, match="Label"):
        apply(data, label(ai_generated=False, extra={"Label": "2"}))


def test_webp_stays_webp_and_lossless_stays_exact() -> None:
    source = samples.drawing(8, transparent=True)
    data = encode(source, "WEBP", lossless=True, exact=True)
    out = apply(data, label())
    assert (out.format, out.media_type) == ("WEBP", "image/webp")
    assert np.array_equal(pixels(out.data), pixels(data))
    assert without_time(read(out.data)) == label()


def test_gif_becomes_png_first_frame() -> None:
    frames = [samples.drawing(i).convert("P") for i in (9, 10)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    labelled = apply(out.getvalue(), label())
    assert labelled.format == "PNG"
    assert np.array_equal(
        pixels(labelled.data), np.asarray(Image.open(out).convert("P"), dtype=np.int16)
    )
    assert without_time(read(labelled.data)) == label()


def test_unlabelled_images_read_none() -> None:
    for fmt in ("PNG", "JPEG", "WEBP", "GIF", "BMP"):
        assert read(encode(samples.drawing(11), fmt)) is None


def test_default_produced_at_is_utc_now() -> None:
    out = apply(encode(samples.scene(12), "PNG"), label())
    assert out.label.produced_at is not None
    assert out.label.produced_at.endswith("Z")
    assert out.label.produced_at[:4].isdigit()


# --------------------------------------------------------------------------- independent readers


def test_png_label_is_readable_without_this_module() -> None:
    out = apply(encode(samples.scene(13), "PNG"), label())
    text = png_text(out.data)
    core = json.loads(text["AIGC"])
    xmp = text["XML:com.adobe.xmp"]
    assert core["Label"] == "1"
    assert core["ContentProducer"] == CHINESE
    assert core["ProduceID"] == "gen-0001"
    assert set(core) == {
        "Label",
        "ContentProducer",
        "ProduceID",
        "ReservedCode1",
        "ContentPropagator",
        "PropagateID",
        "ReservedCode2",
    }
    assert json.loads(core["ReservedCode1"])["ProducedAt"] == out.label.produced_at
    assert XMP_NAMESPACE in xmp
    assert CHINESE in xmp
    # The chunk is iTXt (UTF-8), not Latin-1 tEXt.
    assert b"iTXtAIGC\x00" in out.data
    assert CHINESE.encode() in out.data


def test_jpeg_label_is_readable_without_this_module() -> None:
    out = apply(encode(samples.scene(14), "JPEG"), label())
    assert XMP_APP1 in out.data
    assert XMP_NAMESPACE.encode() in out.data
    with Image.open(io.BytesIO(out.data)) as im:
        xmp = im.info["xmp"]
        comment = im.getexif().get_ifd(EXIF_IFD)[USER_COMMENT]
    assert isinstance(xmp, bytes)
    assert XMP_NAMESPACE.encode() in xmp
    assert CHINESE.encode() in xmp
    assert comment.startswith(b"ASCII\x00\x00\x00")
    core = json.loads(comment[8:].decode("ascii"))["AIGC"]
    assert core["ContentProducer"] == CHINESE
    assert core["ProduceID"] == "gen-0001"


def test_each_place_is_read_on_its_own() -> None:
    """A label only in XMP, or only in EXIF, is still found."""
    xmp_only = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:TC260="{XMP_NAMESPACE}">'
        f"<TC260:AIGC>{aigc_json({'AIGC': GOOD_CORE})}</TC260:AIGC>"
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    found = read(encode(samples.scene(15), "JPEG", xmp=xmp_only.encode()))
    assert found == Label(provider="acme", content_id="id-1")

    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[USER_COMMENT] = b"UNICODE\x00" + json.dumps({"AIGC": GOOD_CORE}).encode(
        "utf-16-be"
    )
    found = read(encode(samples.scene(15), "JPEG", exif=exif))
    assert found == Label(provider="acme", content_id="id-1")


def test_unrelated_user_comment_is_not_a_label() -> None:
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[USER_COMMENT] = b"ASCII\x00\x00\x00holiday photo, AIGC art club"
    assert read(encode(samples.scene(16), "JPEG", exif=exif)) is None


def test_foreign_reserved_code_is_kept_in_extra() -> None:
    core = {**GOOD_CORE, "Label": "3", "ReservedCode1": "sig:abc123"}
    found = read(png_with_text({"AIGC": aigc_json(core)}))
    assert found == Label(
        provider="acme", content_id="id-1", extra={"ReservedCode1": "sig:abc123", "Label": "3"}
    )
    assert found is not None
    with pytest.raises(LabelError, match="ReservedCode1"):
        apply(encode(samples.scene(17), "PNG"), found)


# --------------------------------------------------------------------------- what is preserved


def test_png_text_icc_and_dpi_are_kept_and_old_label_replaced() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "hello")
    info.add_itxt("Description", "一张图片")
    info.add_itxt("AIGC", aigc_json({**GOOD_CORE, "ContentProducer": "old"}))
    icc = b"fake icc profile bytes"
    data = encode(samples.scene(18), "PNG", pnginfo=info, icc_profile=icc, dpi=(300, 300))
    out = apply(data, label())
    text = png_text(out.data)
    assert text["Comment"] == "hello"
    assert text["Description"] == "一张图片"
    assert json.loads(text["AIGC"])["ContentProducer"] == CHINESE
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.info["icc_profile"] == icc
        assert tuple(round(v) for v in im.info["dpi"]) == (300, 300)
    assert out.data.count(b"iTXtAIGC\x00") == 1


def test_jpeg_exif_orientation_icc_and_xmp_are_kept() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Camera maker"
    icc = b"fake icc profile bytes"
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        "<dc:format>image/jpeg</dc:format></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    data = encode(samples.scene(19), "JPEG", exif=exif, icc_profile=icc, xmp=xmp.encode())
    out = apply(data, label())
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.size == (512, 384)
        kept = im.getexif()
        assert kept[0x0112] == 6
        assert kept[0x010F] == "Camera maker"
        assert im.info["icc_profile"] == icc
        merged = im.info["xmp"]
    assert b"<dc:format>image/jpeg</dc:format>" in merged
    assert XMP_NAMESPACE.encode() in merged
    assert without_time(read(out.data)) == label()


def test_relabelling_replaces_the_label() -> None:
    first = apply(encode(samples.scene(20), "JPEG"), label())
    second = apply(first.data, label(content_id="gen-0002"))
    assert without_time(read(second.data)) == label(content_id="gen-0002")
    with Image.open(io.BytesIO(second.data)) as im:
        assert im.info["xmp"].count(XMP_NAMESPACE.encode()) == 1


# --------------------------------------------------------------------------- visible label


def test_visible_label_changes_only_the_bottom_left_banner() -> None:
    data = encode(samples.scene(21), "PNG")
    out = apply(data, label(), visible=True)
    assert out.visible_font is not None
    assert out.visible_box is not None
    left, top, right, bottom = out.visible_box
    width, height = 512, 384
    assert left <= 0.05 * width
    assert bottom >= 0.95 * height
    assert right <= 0.8 * width
    assert top >= 0.75 * height
    before, after = pixels(data), pixels(out.data)
    changed = np.any(before != after, axis=-1)
    rows, cols = np.nonzero(changed)
    assert rows.size > 0
    assert rows.min() >= top
    assert rows.max() < bottom
    assert cols.min() >= left
    assert cols.max() < right
    outside = changed.copy()
    outside[top:bottom, left:right] = False
    assert not outside.any()
    assert without_time(read(out.data)) == label()


@pytest.mark.parametrize("size", [(512, 384), (300, 900), (1200, 200)])
def test_visible_text_is_at_least_five_percent_of_short_side(size: tuple[int, int]) -> None:
    data = encode(Image.new("RGB", size, (128, 128, 128)), "PNG")
    out = apply(data, label(), visible=True)
    assert out.visible_box is not None
    left, top, right, bottom = out.visible_box
    banner = pixels(out.data)[top:bottom, left:right]
    text_rows = np.nonzero(np.any(banner.min(axis=-1) > 200, axis=1))[0]
    target = max(12, math.ceil(0.05 * min(size)))
    assert text_rows.max() - text_rows.min() + 1 >= target
    # The banner darkens the picture (semi-transparent, not opaque black).
    background = banner[0, 0]
    assert 0 < background.max() < 128


def test_visible_label_on_rotated_jpeg_is_drawn_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 512x384, shown 384x512
    data = encode(samples.scene(22), "JPEG", exif=exif)
    out = apply(data, label(), visible=True)
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.size == (384, 512)
        assert im.getexif().get(0x0112, 1) == 1
    assert out.visible_box is not None
    assert out.visible_box[3] > 0.95 * 512
    assert without_time(read(out.data)) == label()


@pytest.mark.parametrize(
    ("make", "fmt"),
    [
        (lambda: samples.drawing(23, transparent=True), "PNG"),
        (lambda: samples.scene(24).convert("L"), "PNG"),
        (lambda: samples.drawing(25).convert("P"), "GIF"),
        (lambda: samples.scene(26).convert("CMYK"), "JPEG"),
        (lambda: samples.scene(27), "WEBP"),
    ],
)
def test_visible_label_on_other_modes(make: Any, fmt: str) -> None:
    out = apply(encode(make(), fmt), label(), visible=True)
    assert out.visible_box is not None
    assert without_time(read(out.data)) == label()


def test_visible_font_fallback_and_coverage() -> None:
    default = ImageFont.load_default(24)
    assert labels._covers(default, "AI-generated")
    assert not labels._covers(default, "生成")
    out = apply(encode(samples.scene(28), "PNG"), label(), visible=True)
    cjk = labels.find_cjk_font()
    if cjk is None:
        assert out.visible_font is not None
        assert out.visible_font.startswith("Pillow default font")
    else:
        assert out.visible_font == cjk[0]


@pytest.mark.skipif(not os.path.isfile(DEJAVU), reason="DejaVu Sans is not installed")
def test_visible_label_with_a_given_font() -> None:
    data = encode(samples.scene(29), "PNG")
    out = apply(data, label(), visible=True, visible_text="Synthetic\nimage", font_path=DEJAVU)
    assert out.visible_font == DEJAVU
    # DejaVu Sans has no CJK glyphs: the default text falls back to ASCII...
    assert apply(data, label(), visible=True, font_path=DEJAVU).visible_box is not None
    # ...but text it cannot draw is refused.
    with pytest.raises(LabelError, match="font"):
        apply(data, label(), visible=True, visible_text="AI生成", font_path=DEJAVU)


def test_visible_label_refuses_tiny_images_and_bad_text() -> None:
    with pytest.raises(LabelError, match="too small"):
        apply(encode(Image.new("RGB", (20, 20)), "PNG"), label(), visible=True)
    data = encode(samples.scene(30), "PNG")
    for text in ("", "   ", "x" * 101, "bad\x00text"):
        with pytest.raises(LabelError):
            apply(data, label(), visible=True, visible_text=text)


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", EmptyImage),
        (b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50, CorruptImage),
        (b"\x13\x37\xbe\xef" * 64, CorruptImage),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', UnsupportedFormat),
    ],
)
def test_bad_bytes_raise_decode_errors(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        apply(data, label())
    with pytest.raises(error):
        read(data)


def test_truncated_png_is_corrupt() -> None:
    data = encode(samples.scene(31), "PNG")
    with pytest.raises(CorruptImage):
        read(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('"just a string"', "not a JSON object"),
        (aigc_json({**GOOD_CORE, "Label": 1}), "Label"),
        (aigc_json({**GOOD_CORE, "Label": "yes"}), "Label"),
        (aigc_json({**GOOD_CORE, "ContentProducer": 5}), "ContentProducer"),
        (aigc_json({**GOOD_CORE, "ContentProducer": ""}), "provider"),
        (aigc_json({**GOOD_CORE, "ProduceID": "x" * 201}), "content_id"),
        (aigc_json({"Label": "1"}), "provider"),
        (aigc_json({**GOOD_CORE, "ReservedCode1": '{"ProducedAt": 7}'}), "ProducedAt"),
        (aigc_json({**GOOD_CORE, "ReservedCode1": '{"ProducedAt": "soon"}'}), "produced_at"),
        (aigc_json({**GOOD_CORE, "ReservedCode1": '{"Extra": {"a": 1}}'}), "Extra"),
        ("[" * 50_000, "not valid JSON"),
        ("[" * 70_000, "longer than"),
    ],
)
def test_malformed_png_label_raises_label_error(value: str, why: str) -> None:
    data = png_with_text({"AIGC": value})
    with pytest.raises(LabelError, match=why) as caught:
        read(data)
    assert caught.value.code == "label_error"
    assert isinstance(caught.value, InputError)


def test_malformed_xmp_label_raises_label_error() -> None:
    broken = f'<x:xmpmeta xmlns:TC260="{XMP_NAMESPACE}"><TC260:AIGC>oops</x:xmpmeta>'
    with pytest.raises(LabelError, match="XML"):
        read(encode(samples.scene(32), "JPEG", xmp=broken.encode()))
    entity = (
        '<!DOCTYPE x [<!ENTITY a "aaaa">]>'
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/" xmlns:TC260="{XMP_NAMESPACE}"/>'
    )
    with pytest.raises(LabelError, match="XMP"):
        read(png_with_text({"XML:com.adobe.xmp": entity}))


def test_a_valid_label_wins_over_a_malformed_one() -> None:
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[USER_COMMENT] = b"ASCII\x00\x00\x00" + json.dumps(
        {"AIGC": GOOD_CORE}
    ).encode("ascii")
    broken = f'<x:xmpmeta xmlns:TC260="{XMP_NAMESPACE}" TC260:AIGC="{{bad"/>'
    data = encode(samples.scene(33), "JPEG", exif=exif, xmp=broken.encode())
    assert read(data) == Label(provider="acme", content_id="id-1")


@pytest.mark.parametrize(
    "changes",
    [
        {"provider": ""},
        {"provider": "   "},
        {"provider": "x" * 201},
        {"content_id": ""},
        {"content_id": "y" * 201},
        {"provider": 7},
        {"provider": "bad\nname"},
        {"produced_at": "yesterday"},
        {"ai_generated": "yes"},
        {"extra": {f"k{i}": "v" for i in range(21)}},
        {"extra": {"k": "v" * 201}},
        {"extra": {"": "v"}},
        {"extra": {"k": 1}},
    ],
)
def test_invalid_label_fields_are_input_errors(changes: dict[str, Any]) -> None:
    with pytest.raises(LabelError) as caught:
        label(**changes)
    assert isinstance(caught.value, InputError)


@pytest.mark.parametrize(
    "extra",
    [
        {"ReservedCode1": "x"},
        {"ContentProducer": "x"},
        {"ContentPropagator": ""},
        {"Label": "4"},
    ],
)
def test_extra_may_not_clash_with_standard_fields(extra: dict[str, str]) -> None:
    with pytest.raises(LabelError):
        apply(encode(samples.scene(34), "PNG"), label(extra=extra))


def test_apply_respects_limits() -> None:
    from screener.core.decode import Limits
    from screener.core.errors import ImageTooLarge

    data = encode(samples.scene(35), "PNG")
    with pytest.raises(ImageTooLarge):
        apply(data, label(), limits=Limits(max_pixels=1000))
    with pytest.raises(UnsupportedFormat):
        read(data, limits=Limits(formats=frozenset({"JPEG"})))


def test_labelled_is_a_plain_value() -> None:
    out = apply(encode(samples.scene(36), "PNG"), label())
    assert isinstance(out, Labelled)
    assert hash(out.label) == hash(dataclasses.replace(out.label))
    assert {out.label: 1}[out.label] == 1


# --------------------------------------------------------------------------- properties


def _printable(ch: str) -> bool:
    return unicodedata.category(ch) not in {"Cc", "Cs"} and ch not in "\ufffe\uffff"


_text = st.text(alphabet=st.characters(codec="utf-8").filter(_printable), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(
    provider=_text.filter(str.strip),
    content_id=_text.filter(str.strip),
    extra=st.dictionaries(
        st.sampled_from(["a", "model", "种子", "x y"]), _text, max_size=labels.MAX_EXTRA
    ),
)
def test_label_json_round_trips(provider: str, content_id: str, extra: dict[str, str]) -> None:
    original = Label(
        provider=provider, content_id=content_id, produced_at="2025-09-01T00:00:00Z", extra=extra
    )
    core = labels._core(original)
    assert labels._parse(json.dumps(core, ensure_ascii=False), "test") == original
    assert labels._parse(labels._user_comment(core)[8:].decode("ascii"), "test") == original
    xmp = labels._xmp_packet(json.dumps(core, ensure_ascii=False), None)
    (value,) = labels._xmp_values(xmp)
    assert labels._parse(value, "test") == original


@settings(max_examples=8, deadline=None)
@given(provider=_text.filter(str.strip), fmt=st.sampled_from(["PNG", "JPEG", "WEBP"]))
def test_apply_read_round_trips_any_provider(provider: str, fmt: str) -> None:
    data = encode(Image.new("RGB", (32, 24), (40, 90, 200)), fmt)
    out = apply(data, label(provider=provider))
    assert read(out.data) == out.label
