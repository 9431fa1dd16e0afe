"""screener.core.decode: peer images, hostile inputs made in code, and fuzzing."""

from __future__ import annotations

import hashlib
import io
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pdqhash
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin

from screener.core.decode import (
    DecodedImage,
    Limits,
    composite,
    decode,
    decode_file,
    tiff_pieces,
    to_rgb,
)
from screener.core.errors import (
    CorruptImage,
    DecodeError,
    EmptyImage,
    ImageTooLarge,
    UnreadableFile,
    UnsupportedFormat,
)

# Pillow warns about the damaged EXIF and TIFF structures, and the huge sizes (before our own
# check refuses them), that these tests feed it.
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning:PIL.*"),
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
]

# PDQ distance of each misc-images/modes file to original.jpg, as measured (Pillow 13,
# alpha over white): 0 for I, L, LA, LAB, RGB, RGBA; 2 for 1, CMYK, F, HSV, P, PA, YCbCr.
MODES_PDQ_BOUND = 3
MODE_FILES = (
    "1.png",
    "CMYK.jpg",
    "F.webp",
    "HSV.webp",
    "I.webp",
    "L.png",
    "LA.png",
    "LAB.webp",
    "P.png",
    "PA.webp",
    "RGB.jpg",
    "RGBA.png",
    "YCbCr.jpg",
    "original.jpg",
)


# --------------------------------------------------------------------------- helpers


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def pdq_bits(image: Image.Image) -> npt.NDArray[np.uint8]:
    bits, _quality = pdqhash.compute(np.asarray(image))
    return np.asarray(bits, dtype=np.uint8)


def hamming(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> int:
    return int(np.count_nonzero(a != b))


def pixels(image: Image.Image) -> npt.NDArray[np.int16]:
    return np.asarray(image).astype(np.int16)


def assert_clean_message(error: DecodeError) -> None:
    """A message for an end user: no Python reprs of bytes or objects."""
    message = str(error)
    assert message
    for fragment in ("b'", 'b"', "\\x", "<_io", "object at 0x", "Traceback"):
        assert fragment not in message, message


def raises_decode_error(data: bytes, **kwargs: Any) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode(data, **kwargs)
    assert_clean_message(info.value)
    return info.value


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A valid-looking RGB PNG header declaring width x height, with almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def tiff(
    width: int,
    height: int,
    bits: list[int],
    photometric: int,
    strip: bytes,
    *,
    sample_format: int = 1,
    extra_samples: int | None = None,
) -> bytes:
    """A little-endian, uncompressed, single-strip TIFF built by hand."""
    samples = len(bits)
    tags: list[tuple[int, int, int, int]] = [
        (256, 3, 1, width),
        (257, 3, 1, height),
        (258, 3, samples, -1),  # value patched below
        (259, 3, 1, 1),
        (262, 3, 1, photometric),
        (273, 4, 1, -2),  # strip offset, patched below
        (277, 3, 1, samples),
        (278, 3, 1, height),
        (279, 4, 1, len(strip)),
        (339, 3, 1, sample_format),
    ]
    if extra_samples is not None:
        tags.append((338, 3, 1, extra_samples))
    tags.sort()
    bits_offset = 8 + 2 + 12 * len(tags) + 4
    strip_offset = bits_offset + (2 * samples if samples > 2 else 0)
    out = b"II*\x00" + struct.pack("<IH", 8, len(tags))
    for tag, kind, count, value in tags:
        if tag == 258:
            if samples > 2:
                out += struct.pack("<HHII", tag, kind, count, bits_offset)
            else:
                out += struct.pack("<HHI", tag, kind, count) + struct.pack("<2H", *[*bits, 0][:2])
        elif tag == 273:
            out += struct.pack("<HHII", tag, kind, count, strip_offset)
        elif kind == 3:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    out += struct.pack("<I", 0)
    if samples > 2:
        out += struct.pack(f"<{samples}H", *bits)
    assert len(out) == strip_offset
    return out + strip


@pytest.fixture
def load_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every pixel load (Image.load and ImageFile.load) during a test."""
    calls: list[str] = []
    original_image_load = Image.Image.load
    original_file_load = ImageFile.ImageFile.load

    def image_load(self: Image.Image) -> Any:
        calls.append(f"Image.load {self.size}")
        return original_image_load(self)

    def file_load(self: ImageFile.ImageFile) -> Any:
        calls.append(f"ImageFile.load {self.size}")
        return original_file_load(self)

    monkeypatch.setattr(Image.Image, "load", image_load)
    monkeypatch.setattr(ImageFile.ImageFile, "load", file_load)
    return calls


def small_rgb(width: int = 48, height: int = 32, seed: int = 0) -> Image.Image:
    """A smooth, asymmetric test picture (so orientations and scalings can be compared)."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    base = np.stack(
        [x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 64 * 4], axis=-1
    )
    base[: height // 3, : width // 4] = rng.integers(0, 255, 3)  # a block in one corner
    return Image.fromarray(base.astype(np.uint8))


# --------------------------------------------------------------------------- peers: modes


@pytest.fixture(scope="module")
def modes_dir(peers_dir: Path) -> Path:
    return peers_dir / "threatexchange-pdq" / "misc-images" / "modes"


@pytest.fixture(scope="module")
def original_pdq(modes_dir: Path) -> npt.NDArray[np.uint8]:
    return pdq_bits(decode_file(modes_dir / "original.jpg").image)


def test_mode_files_are_all_covered(modes_dir: Path) -> None:
    images = {p.name for p in modes_dir.iterdir() if p.suffix.lower() != ".md"}
    assert images == set(MODE_FILES)


@pytest.mark.parametrize("name", MODE_FILES)
def test_every_mode_file_decodes_to_rgb_near_the_original(
    modes_dir: Path, original_pdq: npt.NDArray[np.uint8], name: str
) -> None:
    decoded = decode_file(modes_dir / name)
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (1600, 1004) == (decoded.width, decoded.height)
    assert decoded.orientation == 1
    distance = hamming(pdq_bits(decoded.image), original_pdq)
    assert distance <= MODES_PDQ_BOUND, f"{name}: {distance} bits from original.jpg"


def test_mode_files_report_their_source_modes(modes_dir: Path) -> None:
    expected = {"1.png": "1", "L.png": "L", "LA.png": "LA", "P.png": "P", "CMYK.jpg": "CMYK"}
    for name, mode in expected.items():
        decoded = decode_file(modes_dir / name)
        assert decoded.source_mode == mode
        # LA.png declares an alpha band (fully opaque): it comes back as a mask.
        assert (decoded.alpha is not None) == (mode == "LA")
        assert not decoded.is_transparent


# --------------------------------------------------------------------------- peers: EXIF


EXIF_SIZES = {1: (4032, 3024), 3: (4032, 3024), 6: (3024, 4032), 8: (3024, 4032)}


@pytest.mark.parametrize("orientation", sorted(EXIF_SIZES))
def test_exif_rotation_is_applied(peers_dir: Path, orientation: int) -> None:
    path = peers_dir / "threatexchange-pdq" / "reg-test-input" / "exif-rotn"
    path = path / f"exif-rotn-{orientation}.jpg"
    with Image.open(path) as stored:
        assert stored.size == (4032, 3024)  # every file is stored landscape

    full = decode_file(path)
    assert full.orientation == orientation
    assert (full.width, full.height) == EXIF_SIZES[orientation]
    assert full.image.size == EXIF_SIZES[orientation]

    small = decode_file(path, max_side=512)
    assert (small.width, small.height) == EXIF_SIZES[orientation]
    assert max(small.image.size) == 512
    landscape = EXIF_SIZES[orientation][0] > EXIF_SIZES[orientation][1]
    assert (small.image.width > small.image.height) == landscape
    # The reduced (draft-mode) decode shows the same upright picture as the full one.
    reference = full.image.resize(small.image.size, Image.Resampling.LANCZOS)
    assert float(np.abs(pixels(reference) - pixels(small.image)).mean()) < 4.0


# --------------------------------------------------------------------------- peers: formats


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("ukbench09380.svg", "JPEG"),
        ("ukbench09380.png", "JPEG"),
        ("ukbench09380.bmp", "JPEG"),
        ("ukbench09380.jpeg", "JPEG"),
        ("ukbench09380.webp", "WEBP"),
    ],
)
def test_misnamed_and_real_formats_are_sniffed(peers_dir: Path, name: str, fmt: str) -> None:
    folder = peers_dir / "imagededup" / "formats_images"
    decoded = decode_file(folder / name)
    assert decoded.format == fmt
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (640, 480)
    reference = decode_file(folder / "ukbench09380.jpeg")
    assert hamming(pdq_bits(decoded.image), pdq_bits(reference.image)) <= 8


def test_animated_gif_decodes_its_first_frame(peers_dir: Path) -> None:
    path = peers_dir / "imagededup" / "formats_images" / "giphy.gif"
    decoded = decode_file(path)
    assert decoded.format == "GIF"
    assert decoded.source_mode == "P"
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (314, 400)
    with Image.open(path) as gif:
        gif.seek(0)
        first = composite(gif.convert("RGBA"), (255, 255, 255))
    assert np.array_equal(pixels(first), pixels(decoded.image))


def test_tiff_decodes(peers_dir: Path) -> None:
    decoded = decode_file(peers_dir / "imagededup" / "formats_images" / "copyleft.tiff")
    assert decoded.format == "TIFF"
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (220, 220)


@pytest.mark.parametrize(("name", "label"), [("marbles.pbm", "PBM"), ("baboon.pgm", "PGM")])
def test_netpbm_is_outside_the_allow_list(peers_dir: Path, name: str, label: str) -> None:
    with pytest.raises(UnsupportedFormat, match=label) as info:
        decode_file(peers_dir / "imagededup" / "formats_images" / name)
    assert_clean_message(info.value)


def test_rgba_png_comes_with_an_alpha_mask(peers_dir: Path) -> None:
    decoded = decode_file(peers_dir / "imagededup" / "alpha_channel_image.png")
    assert decoded.source_mode == "RGBA"
    assert decoded.alpha is not None
    assert decoded.alpha.mode == "L"
    assert decoded.alpha.size == decoded.image.size == (640, 480)
    assert decoded.image.mode == "RGB"


def test_peer_jpeg_with_exif_rotation(peers_dir: Path) -> None:
    decoded = decode_file(peers_dir / "imagededup" / "base_images" / "ukbench09268.jpg")
    assert decoded.orientation == 6
    assert decoded.image.size == (480, 640) == (decoded.width, decoded.height)


# --------------------------------------------------------------------------- peers: bad


@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("drawing.svg", UnsupportedFormat, "SVG is not supported"),
        ("corrupt.jpg", CorruptImage, "not a recognisable image"),
        ("truncated.jpg", CorruptImage, "truncated"),
        ("empty.png", EmptyImage, "empty"),
        ("text.png", UnsupportedFormat, "text"),
        ("bomb-30000x30000.png", ImageTooLarge, "900.0 megapixels"),
    ],
)
def test_bad_files_give_typed_errors(
    peers_dir: Path, load_calls: list[str], name: str, error: type[DecodeError], words: str
) -> None:
    started = time.perf_counter()
    with pytest.raises(error, match=words) as info:
        decode_file(peers_dir / "bad" / name)
    assert_clean_message(info.value)
    if name.startswith("bomb"):
        assert load_calls == []  # refused from the header
        assert time.perf_counter() - started < 2.0


def test_svg_message_names_the_raster_formats(peers_dir: Path) -> None:
    with pytest.raises(UnsupportedFormat) as info:
        decode_file(peers_dir / "bad" / "drawing.svg")
    assert str(info.value) == (
        "SVG is not supported; send a raster image (JPEG, PNG, WebP, GIF, BMP, TIFF)."
    )


def test_corrupt_peer_jpeg(peers_dir: Path) -> None:
    with pytest.raises(DecodeError) as info:
        decode_file(peers_dir / "imagededup" / "mixed_images" / "ukbench09268_corrupt.jpg")
    assert_clean_message(info.value)


# --------------------------------------------------------------------------- decode_file


def test_missing_file_names_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.png"
    with pytest.raises(UnreadableFile, match=r"nowhere\.png"):
        decode_file(missing)
    with pytest.raises(UnreadableFile, match="directory"):
        decode_file(tmp_path)


def test_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    huge = tmp_path / "huge.png"
    with huge.open("wb") as fh:
        fh.write(png_declaring(10, 10))
        fh.truncate(1 << 30)  # sparse: 1 GiB that would take a while to read
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge):
        decode_file(huge)
    assert time.perf_counter() - started < 2.0


def test_decode_file_matches_decode(tmp_path: Path) -> None:
    data = encode(small_rgb(), "PNG")
    path = tmp_path / "picture.jpg"  # the wrong name on purpose
    path.write_bytes(data)
    from_file = decode_file(path, max_side=20)
    from_bytes = decode(data, max_side=20)
    assert from_file.format == from_bytes.format == "PNG"
    assert from_file.sha256 == from_bytes.sha256 == hashlib.sha256(data).hexdigest()
    assert np.array_equal(pixels(from_file.image), pixels(from_bytes.image))


# --------------------------------------------------------------------------- size caps


def test_too_many_bytes_is_checked_before_anything_else() -> None:
    limits = Limits(max_bytes=100)
    assert isinstance(raises_decode_error(b"\x00" * 101, limits=limits), ImageTooLarge)
    assert isinstance(raises_decode_error(encode(small_rgb(), "PNG"), limits=limits), ImageTooLarge)


def test_empty_bytes() -> None:
    assert isinstance(raises_decode_error(b""), EmptyImage)


@pytest.mark.parametrize(
    ("width", "height"), [(100_000, 100_000), (10_000, 6_000), (2**31 - 1, 2**31 - 1)]
)
def test_huge_declared_png_is_refused_from_the_header(
    load_calls: list[str], width: int, height: int
) -> None:
    error = raises_decode_error(png_declaring(width, height))
    assert isinstance(error, ImageTooLarge)
    assert load_calls == []


def test_pixel_limit_message_gives_the_size(load_calls: list[str]) -> None:
    error = raises_decode_error(png_declaring(10_000, 6_000))
    assert "10000x6000" in str(error)
    assert "60.0 megapixels" in str(error)
    small = encode(small_rgb(20, 20), "PNG")
    load_calls.clear()
    assert isinstance(raises_decode_error(small, limits=Limits(max_pixels=399)), ImageTooLarge)
    assert load_calls == []
    assert decode(small, limits=Limits(max_pixels=400)).image.size == (20, 20)


@pytest.mark.filterwarnings("error")
def test_warnings_as_errors_change_nothing() -> None:
    # 108 megapixels: Pillow warns (DecompressionBombWarning) before our own check refuses.
    assert isinstance(raises_decode_error(png_declaring(12_000, 9_000)), ImageTooLarge)
    corrupt_exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00"
    decoded = decode(encode(small_rgb(), "JPEG", exif=corrupt_exif))
    assert decoded.orientation == 1


def test_format_outside_the_limits_is_refused() -> None:
    limits = Limits(formats=frozenset({"JPEG"}))
    error = raises_decode_error(encode(small_rgb(), "PNG"), limits=limits)
    assert isinstance(error, UnsupportedFormat)
    assert "PNG" in str(error)
    assert "(JPEG)" in str(error)
    # PostScript is never handed to Pillow (its reader runs Ghostscript), even if listed.
    eps_allowed = Limits(formats=frozenset({"EPS"}))
    eps = raises_decode_error(b"%!PS-Adobe-3.0 EPSF-3.0\n", limits=eps_allowed)
    assert isinstance(eps, UnsupportedFormat)


# --------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b"\xef\xbb\xbf  <!-- c -->\n<svg width='1'></svg>", "SVG"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "HTML"),
        (b'<?xml version="1.0"?><root/>', "XML"),
        (b'{"image": "nope"}', "JSON"),
        (b"data:image/png;base64,iVBORw0KGgo=", "data: URI"),
        (b"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk", "base64"),
        (b"just some words\n", "text"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b"8BPS\x00\x01" + b"\x00" * 40, "PSD"),
        (b"\x00\x00\x01\x00\x01\x00" + b"\x00" * 40, "ICO"),
        (b"PK\x03\x04" + b"\x00" * 40, "ZIP"),
        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40, "HEIC"),
        (b"P6\n2 2\n255\n" + b"\x00" * 12, "PPM"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n", "PostScript"),
    ],
)
def test_non_images_are_named(data: bytes, words: str) -> None:
    error = raises_decode_error(data)
    assert isinstance(error, UnsupportedFormat)
    assert words in str(error)


def test_random_bytes_are_corrupt() -> None:
    blob = b"\x13\x37" + np.random.default_rng(7).bytes(10_000)
    error = raises_decode_error(blob)
    assert isinstance(error, CorruptImage)


def test_truncated_signature() -> None:
    error = raises_decode_error(b"\x89PNG\r\n")
    assert isinstance(error, CorruptImage)
    assert "truncated" in str(error)


# --------------------------------------------------------------------------- damaged files


def test_jpeg_cut_at_any_point_is_corrupt_or_truncated() -> None:
    data = encode(small_rgb(64, 48), "JPEG", quality=90)
    assert decode(data).image.size == (64, 48)
    truncated = 0
    for cut in range(1, len(data) - 2, 7):
        error = raises_decode_error(data[:cut])
        assert isinstance(error, (CorruptImage, UnsupportedFormat))
        truncated += "truncated" in str(error)
    assert truncated > (len(data) // 7) * 0.8  # most cuts land in the scan data


def test_progressive_jpeg_cut_short() -> None:
    data = encode(small_rgb(64, 48), "JPEG", progressive=True)
    error = raises_decode_error(data[: len(data) * 2 // 3])
    assert isinstance(error, CorruptImage)
    assert "truncated" in str(error)


def test_png_with_bad_header_crc() -> None:
    data = bytearray(encode(small_rgb(), "PNG"))
    data[29] ^= 0xFF  # last byte of the IHDR CRC
    assert isinstance(raises_decode_error(bytes(data)), CorruptImage)


def test_png_with_damaged_pixel_data() -> None:
    data = encode(small_rgb(), "PNG")
    start = data.index(b"IDAT") + 10
    damaged = data[:start] + bytes(b ^ 0x5A for b in data[start : start + 8]) + data[start + 8 :]
    assert isinstance(raises_decode_error(damaged), CorruptImage)


def test_png_cut_short() -> None:
    data = encode(small_rgb(), "PNG")
    error = raises_decode_error(data[: len(data) // 2])
    assert isinstance(error, CorruptImage)
    assert "truncated" in str(error)


def test_gif_with_many_frames_gives_the_first() -> None:
    frames = [Image.new("P", (8, 8), i % 200) for i in range(400)]
    for frame in frames:
        frame.putpalette([c for i in range(256) for c in (i, 255 - i, 7)])
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=10)
    with Image.open(io.BytesIO(data)) as gif:
        assert getattr(gif, "n_frames", 1) == 400
    started = time.perf_counter()
    decoded = decode(data)
    assert time.perf_counter() - started < 1.0
    assert decoded.format == "GIF"
    assert pixels(decoded.image)[0, 0].tolist() == [0, 255, 7]
    # Later frames are never read: cut the file in the middle of them and it still decodes.
    cut = decode(data[: len(data) // 2] + b"\x00\xff\xfe")
    assert np.array_equal(pixels(cut.image), pixels(decoded.image))


def mpo(colours: list[tuple[int, int, int]]) -> bytes:
    frames = [Image.new("RGB", (30, 20), colour) for colour in colours]
    return encode(frames[0], "MPO", save_all=True, append_images=frames[1:])


def test_mpo_gives_its_first_picture() -> None:
    data = mpo([(255, 0, 0), (0, 255, 0)])
    decoded = decode(data)
    assert decoded.format == "MPO"
    assert np.abs(pixels(decoded.image)[5, 5] - [255, 0, 0]).max() <= 2
    reduced = decode(data, max_side=10)
    assert reduced.image.size == (10, 7)
    assert np.abs(pixels(reduced.image)[3, 3] - [255, 0, 0]).max() <= 2
    without_mpo = Limits(formats=frozenset({"JPEG", "PNG"}))
    error = raises_decode_error(data, limits=without_mpo)
    assert isinstance(error, UnsupportedFormat)
    assert "MPO" in str(error)


def test_cmyk_jpeg_in_draft_mode() -> None:
    data = encode(Image.new("RGB", (400, 300), (0, 128, 255)).convert("CMYK"), "JPEG")
    decoded = decode(data, max_side=50)
    assert decoded.source_mode == "CMYK"
    assert decoded.image.size == (50, 38)
    assert np.abs(pixels(decoded.image)[10, 10] - [0, 128, 255]).max() <= 3


def test_bmp_and_webp_roundtrip() -> None:
    picture = small_rgb()
    for fmt in ("BMP", "WEBP"):
        decoded = decode(encode(picture, fmt, **({"lossless": True} if fmt == "WEBP" else {})))
        assert decoded.format == fmt
        assert np.array_equal(pixels(decoded.image), pixels(picture))


# --------------------------------------------------------------------------- TIFF variants


def test_tiff_odd_bit_depths() -> None:
    two_bit = decode(tiff(4, 1, [2], 1, b"\x1b"))
    assert pixels(two_bit.image)[0, :, 0].tolist() == [0, 85, 170, 255]

    sixteen = decode(tiff(4, 1, [16], 1, struct.pack("<4H", 0, 1000, 4000, 4095)))
    assert sixteen.source_mode.startswith("I;16")
    # 12-bit data in 16-bit samples: scaled by 255/4095, not clipped to white.
    assert pixels(sixteen.image)[0, :, 0].tolist() == [0, 62, 249, 255]

    signed = decode(tiff(2, 1, [16], 1, struct.pack("<2h", -100, 100), sample_format=2))
    assert pixels(signed.image)[0, :, 0].tolist() == [0, 200]

    floats = decode(tiff(3, 1, [32], 1, struct.pack("<3f", -3.0, 99.6, 300.0), sample_format=3))
    assert floats.source_mode == "F"
    assert pixels(floats.image)[0, :, 0].tolist() == [0, 100, 255]

    rgb16 = decode(tiff(1, 1, [16, 16, 16], 2, struct.pack("<3H", 65535, 0, 32896)))
    assert pixels(rgb16.image)[0, 0].tolist() == [255, 0, 128]

    cmyk = decode(tiff(1, 1, [8, 8, 8, 8], 5, b"\x00\x00\x00\x00"))
    assert cmyk.source_mode == "CMYK"
    assert pixels(cmyk.image)[0, 0].tolist() == [255, 255, 255]


def test_tiff_associated_alpha_is_unpremultiplied() -> None:
    data = tiff(1, 1, [8, 8, 8, 8], 2, b"\x80\x40\x20\x80", extra_samples=1)
    decoded = decode(data, background=(0, 0, 0))
    assert decoded.alpha is not None
    assert np.asarray(decoded.alpha).tolist() == [[128]]
    assert np.abs(pixels(decoded.image)[0, 0] - [128, 64, 32]).max() <= 1


@pytest.mark.parametrize(
    "data",
    [
        tiff(1, 1, [5, 5, 5], 2, b"\xff\xff"),  # 5 bits per sample
        tiff(1, 1, [64], 1, struct.pack("<d", 1.0), sample_format=3),  # 64-bit float
    ],
)
def test_tiff_variants_pillow_cannot_decode(data: bytes) -> None:
    assert isinstance(raises_decode_error(data), UnsupportedFormat)


def test_tiff_with_broken_structure() -> None:
    assert isinstance(raises_decode_error(b"II*\x00\xff\xff\xff\x7f"), CorruptImage)
    assert isinstance(raises_decode_error(b"II*\x00\x08\x00\x00\x00\x00\x00"), CorruptImage)


# --------------------------------------------------------------------------- 16-bit PNG


def test_low_range_16_bit_png_is_scaled_not_clipped() -> None:
    ramp = np.linspace(0, 4095, 64).astype(np.uint16).reshape(8, 8)
    decoded = decode(encode(Image.fromarray(ramp), "PNG"))
    assert decoded.source_mode.startswith("I")
    expected = np.rint(ramp.astype(np.float64) * 255 / 4095)
    assert np.abs(pixels(decoded.image)[..., 0] - expected).max() <= 1
    assert pixels(decoded.image).max() == 255
    assert float(pixels(decoded.image).mean()) < 160  # a ramp, not a white sheet


def test_full_range_16_bit_png_divides_by_257() -> None:
    ramp = (np.arange(64, dtype=np.uint16) * 1040).reshape(8, 8)
    decoded = decode(encode(Image.fromarray(ramp), "PNG"))
    expected = np.rint(ramp.astype(np.float64) / 257)
    assert np.abs(pixels(decoded.image)[..., 0] - expected).max() <= 1


def test_16_bit_png_with_a_transparent_value() -> None:
    values = np.array([[0, 1000], [2000, 65535]], dtype=np.uint16)
    decoded = decode(encode(Image.fromarray(values), "PNG", transparency=1000))
    assert decoded.alpha is not None
    assert np.asarray(decoded.alpha).tolist() == [[255, 0], [255, 255]]
    assert decoded.is_transparent


# --------------------------------------------------------------------------- transparency


def test_palette_with_transparent_index() -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((1, 0), 1)
    data = encode(image, "PNG", transparency=1)
    decoded = decode(data, background=(0, 255, 0))
    assert decoded.source_mode == "P"
    assert decoded.alpha is not None
    assert np.asarray(decoded.alpha).tolist() == [[255, 0]]
    assert pixels(decoded.image).tolist() == [[[255, 0, 0], [0, 255, 0]]]
    gif = decode(encode(image, "GIF", transparency=1), background=(9, 9, 9))
    assert pixels(gif.image).tolist() == [[[255, 0, 0], [9, 9, 9]]]


def test_palette_with_partial_alpha_table() -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([200, 100, 0, 255, 0, 0, 0, 255], rawmode="RGBA")
    image.info["transparency"] = b"\x80\xff"
    image.putpixel((1, 0), 1)
    decoded = decode(encode(image, "PNG"), background=(0, 0, 0))
    assert decoded.alpha is not None
    assert np.asarray(decoded.alpha).tolist() == [[128, 255]]
    assert np.abs(pixels(decoded.image)[0, 0] - [100, 50, 0]).max() <= 1


@pytest.mark.parametrize(("mode", "key"), [("L", 255), ("RGB", (255, 255, 255)), ("1", 1)])
def test_colour_key_transparency(mode: str, key: int | tuple[int, int, int]) -> None:
    image = Image.new(mode, (2, 1), 0)
    image.putpixel((1, 0), key)
    decoded = decode(encode(image, "PNG", transparency=key), background=(1, 2, 3))
    assert decoded.alpha is not None
    assert np.asarray(decoded.alpha).tolist() == [[255, 0]]
    assert pixels(decoded.image).tolist() == [[[0, 0, 0], [1, 2, 3]]]


def test_rgba_over_several_backgrounds() -> None:
    image = Image.new("RGBA", (1, 1), (200, 100, 0, 128))
    decoded = decode(encode(image, "PNG"), background=(0, 0, 0))
    assert decoded.alpha is not None
    assert decoded.is_transparent
    assert np.abs(pixels(decoded.image)[0, 0] - [100, 50, 0]).max() <= 1
    white = composite(image, (255, 255, 255))
    assert np.abs(pixels(white)[0, 0] - [227, 177, 127]).max() <= 1
    assert pixels(composite(image.convert("LA"), (0, 0, 0)))[0, 0, 0] in range(40, 60)
    assert composite(small_rgb(), (0, 0, 0)).mode == "RGB"


def test_opaque_image_has_no_alpha() -> None:
    decoded = decode(encode(small_rgb(), "PNG"))
    assert decoded.alpha is None
    assert not decoded.is_transparent


# --------------------------------------------------------------------------- every mode


ONE_PIXEL: list[tuple[str, Any, list[int], int | None]] = [
    # mode, colour, expected RGB over white, expected alpha
    ("1", 1, [255, 255, 255], None),
    ("L", 100, [100, 100, 100], None),
    ("LA", (100, 0), [255, 255, 255], 0),
    ("La", (0, 0), [255, 255, 255], 0),
    ("PA", (0, 255), [0, 0, 0], 255),
    ("I", 1000, [249, 249, 249], None),  # 10 significant bits: 1000 * 255 / 1023
    ("I", -7, [0, 0, 0], None),
    ("I;16", 300, [150, 150, 150], None),  # 9 significant bits
    ("I;16", 200, [200, 200, 200], None),  # 8-bit data in a 16-bit container
    ("I;16B", 65535, [255, 255, 255], None),
    ("I;16L", 40, [40, 40, 40], None),
    ("F", 100.4, [100, 100, 100], None),
    ("F", 1e9, [255, 255, 255], None),
    ("F", float("nan"), [0, 0, 0], None),
    ("CMYK", (0, 0, 0, 0), [255, 255, 255], None),
    ("YCbCr", (255, 128, 128), [255, 255, 255], None),
    ("LAB", (255, 128, 128), [255, 255, 255], None),
    ("HSV", (0, 0, 255), [255, 255, 255], None),
    ("RGB", (1, 2, 3), [1, 2, 3], None),
    ("RGBX", (1, 2, 3, 0), [1, 2, 3], None),
    ("RGBA", (10, 20, 30, 0), [255, 255, 255], 0),
    ("RGBA", (10, 20, 30, 255), [10, 20, 30], 255),
    ("RGBa", (10, 20, 30, 255), [10, 20, 30], 255),
    ("P", 0, [0, 0, 0], None),
]


@pytest.mark.parametrize(("mode", "colour", "rgb", "alpha"), ONE_PIXEL)
def test_to_rgb_for_every_mode(mode: str, colour: Any, rgb: list[int], alpha: int | None) -> None:
    image = Image.new(mode, (1, 1), colour)
    out, mask = to_rgb(image)
    assert out.mode == "RGB"
    assert out.size == (1, 1)
    assert np.abs(pixels(out)[0, 0] - rgb).max() <= 1, pixels(out)[0, 0]
    if alpha is None:
        assert mask is None
    else:
        assert mask is not None
        assert mask.mode == "L"
        assert np.asarray(mask).tolist() == [[alpha]]


SAVABLE = [
    ("1", "PNG"),
    ("1", "BMP"),
    ("L", "PNG"),
    ("L", "JPEG"),
    ("L", "GIF"),
    ("LA", "PNG"),
    ("LA", "TIFF"),
    ("P", "PNG"),
    ("P", "BMP"),
    ("PA", "TIFF"),
    ("I", "TIFF"),
    ("I;16", "PNG"),
    ("I;16", "TIFF"),
    ("I;16B", "TIFF"),
    ("F", "TIFF"),
    ("CMYK", "JPEG"),
    ("CMYK", "TIFF"),
    ("YCbCr", "TIFF"),
    ("LAB", "TIFF"),
    ("RGB", "WEBP"),
    ("RGBA", "WEBP"),
    ("RGBA", "PNG"),
    ("RGBA", "TIFF"),
]


@pytest.mark.parametrize(("mode", "fmt"), SAVABLE)
def test_one_pixel_file_of_every_mode(mode: str, fmt: str) -> None:
    image = Image.new("RGB", (1, 1), (90, 140, 200)).convert(mode)
    decoded = decode(encode(image, fmt))
    assert decoded.format == fmt
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (1, 1) == (decoded.width, decoded.height)


# --------------------------------------------------------------------------- orientation


def jpeg_with_orientation(picture: Image.Image, orientation: int | bytes) -> bytes:
    if isinstance(orientation, bytes):
        return encode(picture, "JPEG", quality=95, exif=orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(picture, "JPEG", quality=95, exif=exif.tobytes())


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation(orientation: int) -> None:
    data = jpeg_with_orientation(small_rgb(48, 32), orientation)
    decoded = decode(data)
    assert decoded.orientation == orientation
    with Image.open(io.BytesIO(data)) as raw:
        upright = ImageOps.exif_transpose(raw).convert("RGB")
    assert np.array_equal(pixels(decoded.image), pixels(upright))
    assert (decoded.width, decoded.height) == upright.size

    reduced = decode(data, max_side=12)  # draft mode and orientation together
    assert max(reduced.image.size) == 12
    assert (reduced.width, reduced.height) == upright.size
    expected = upright.resize(reduced.image.size, Image.Resampling.LANCZOS)
    assert float(np.abs(pixels(expected) - pixels(reduced.image)).mean()) < 12


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF", "TIFF-LZW"])
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_orientation_in_other_formats(fmt: str, orientation: int) -> None:
    picture = small_rgb(40, 20)
    if fmt.startswith("TIFF"):
        compression = "tiff_lzw" if fmt.endswith("LZW") else None
        data = encode(picture, "TIFF", tiffinfo={0x0112: orientation}, compression=compression)
    else:
        data = encode(picture, fmt, exif=jpeg_exif(orientation), lossless=True)
    decoded = decode(data)
    assert decoded.orientation == orientation
    expected = picture.transpose(
        {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_270}.get(
            orientation, Image.Transpose.ROTATE_90
        )
    )
    assert (decoded.width, decoded.height) == expected.size
    assert np.array_equal(pixels(decoded.image), pixels(expected))  # applied exactly once


@pytest.mark.parametrize(
    "exif",
    [
        b"Exif\x00\x00" + b"\xde\xad\xbe\xef" * 8,  # not TIFF-structured at all
        b"Exif\x00\x00II*\x00\xff\xff\x00\x00",  # IFD offset past the end
        b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00",
    ],
)
def test_corrupt_exif_is_orientation_1(exif: bytes) -> None:
    decoded = decode(jpeg_with_orientation(small_rgb(), exif))
    assert decoded.orientation == 1
    assert decoded.image.size == (48, 32)


@pytest.mark.parametrize("value", [0, 9, 65535])
def test_out_of_range_orientation_is_1(value: int) -> None:
    decoded = decode(jpeg_with_orientation(small_rgb(), value))
    assert decoded.orientation == 1
    assert decoded.image.size == (48, 32)


# --------------------------------------------------------------------------- max_side


def test_max_side_uses_jpeg_draft(monkeypatch: pytest.MonkeyPatch) -> None:
    requested: list[tuple[int, int] | None] = []
    jpeg_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self: Any, mode: str | None, size: tuple[int, int] | None) -> Any:
        requested.append(size)
        return jpeg_draft(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    data = encode(small_rgb(800, 600), "JPEG")
    decoded = decode(data, max_side=100)
    assert requested == [(100, 75)]
    assert decoded.image.size == (100, 75)
    assert (decoded.width, decoded.height) == (800, 600)
    assert decode(data, max_side=1000).image.size == (800, 600)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF", "TIFF", "BMP"])
def test_max_side_for_other_formats(fmt: str) -> None:
    decoded = decode(encode(small_rgb(300, 120), fmt), max_side=50)
    assert decoded.image.size == (50, 20)
    assert (decoded.width, decoded.height) == (300, 120)


def test_max_side_keeps_alpha_aligned() -> None:
    image = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 100, 100))
    decoded = decode(encode(image, "PNG"), max_side=20)
    assert decoded.alpha is not None
    assert decoded.alpha.size == decoded.image.size == (20, 10)
    alpha = np.asarray(decoded.alpha)
    assert alpha[:, :9].min() >= 250  # resampling rings a little at the edge
    assert alpha[:, 11:].max() <= 5


def test_arguments_are_checked() -> None:
    data = encode(small_rgb(), "PNG")
    with pytest.raises(ValueError, match="max_side"):
        decode(data, max_side=0)
    with pytest.raises(ValueError, match="background"):
        decode(data, background=(0, 0, 256))
    with pytest.raises(ValueError, match="max_pixels"):
        Limits(max_pixels=0)


def test_decoded_image_is_independent_of_the_source() -> None:
    decoded: DecodedImage = decode(encode(small_rgb(), "PNG"))
    decoded.image.load()  # not a closed file-backed image
    assert decoded.image.getpixel((0, 0)) is not None


# --------------------------------------------------------------------------- fuzzing


def seeds() -> list[bytes]:
    picture = small_rgb(16, 12)
    return [
        encode(picture, "PNG"),
        encode(picture, "JPEG", quality=80),
        encode(picture, "JPEG", progressive=True, exif=jpeg_exif(6)),
        encode(picture.convert("P"), "GIF"),
        encode(picture, "WEBP"),
        encode(picture, "BMP"),
        encode(picture, "TIFF"),
        encode(picture.convert("RGBA"), "PNG"),
    ]


def jpeg_exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


SEEDS = seeds()
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def only_decode_errors(data: bytes) -> None:
    try:
        decoded = decode(data, max_side=64)
    except DecodeError as error:
        assert_clean_message(error)
    else:
        assert decoded.image.mode == "RGB"
        assert max(decoded.image.size) <= 64


@FUZZ
@given(st.binary(max_size=4096))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    only_decode_errors(data)


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6),
    st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_fuzz_mutated_images(seed: bytes, changes: list[tuple[int, int]], cut: int | None) -> None:
    data = bytearray(seed)
    for position, value in changes:
        data[position % len(data)] = value
    if cut is not None:
        del data[cut % len(data) :]
    only_decode_errors(bytes(data))


SIGNATURES = [
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
]


@FUZZ
@given(
    st.sampled_from(SIGNATURES),
    st.binary(max_size=512),
)
def test_fuzz_signature_then_garbage(signature: bytes, tail: bytes) -> None:
    only_decode_errors(signature + tail)


def test_seeds_are_valid() -> None:
    for seed in SEEDS:
        assert decode(seed).image.size in {(16, 12), (12, 16)}


# ------------------------------------------------------------- TIFF strips and tiles (a bomb)


def pieces_tiff(count: int, *, tiles: bool = False, order: str = "<", shared: bool = True) -> bytes:
    """An uncompressed RGB TIFF in ``count`` one-row strips (4 pixels wide) or 16x16 tiles
    stacked downwards. ``shared``: every piece points at the same bytes, so the file stays
    small whatever ``count``; else row ``i`` is grey level ``i % 256``."""
    side = 16 if tiles else 4
    piece = side * (side if tiles else 1) * 3
    height = count * (side if tiles else 1)
    placement = [(322, 3, 1, side), (323, 3, 1, side)] if tiles else [(278, 3, 1, 1)]
    offsets_tag, counts_tag = (324, 325) if tiles else (273, 279)
    tags = sorted(
        [
            (256, 3, 1, side),
            (257, 4, 1, height),
            (258, 3, 3, 0),  # bits per sample: patched to their offset below
            (259, 3, 1, 1),
            (262, 3, 1, 2),
            (277, 3, 1, 3),
            (offsets_tag, 4, count, 0),
            (counts_tag, 4, count, 0),
            *placement,
        ]
    )
    bits_at = 8 + 2 + 12 * len(tags) + 4
    offsets_at = bits_at + 6
    counts_at = offsets_at + 4 * count
    pixels_at = counts_at + 4 * count
    patched = {258: bits_at, offsets_tag: offsets_at, counts_tag: counts_at}
    head = b"II*\x00" if order == "<" else b"MM\x00*"
    out = head + struct.pack(f"{order}IH", 8, len(tags))
    for tag, kind, number, stated in tags:
        value = patched.get(tag, stated)
        if kind == 3 and number == 1:
            out += struct.pack(f"{order}HHIHH", tag, kind, number, value, 0)
        else:
            out += struct.pack(f"{order}HHII", tag, kind, number, value)
    out += struct.pack(f"{order}I", 0) + struct.pack(f"{order}3H", 8, 8, 8)
    starts = [pixels_at] * count if shared else range(pixels_at, pixels_at + piece * count, piece)
    out += struct.pack(f"{order}{count}I", *starts) + struct.pack(
        f"{order}{count}I", *[piece] * count
    )
    if shared:
        return out + bytes(i % 256 for i in range(piece))
    return out + b"".join(bytes([i % 256]) * piece for i in range(count))


@pytest.mark.parametrize(
    ("tiles", "order"), [(False, "<"), (False, ">"), (True, "<")], ids=["strips", "MM", "tiles"]
)
def test_a_tiff_in_too_many_pieces_is_refused_before_it_is_opened(tiles: bool, order: str) -> None:
    """Pillow spends time and memory per strip or tile (1,000,000 one-row strips: 4 s and
    456 MB); the header says how many there are before anything is parsed."""
    limit = Limits().max_tiff_pieces
    data = pieces_tiff(limit + 1, tiles=tiles, order=order)
    assert len(data) < 1_000_000
    with pytest.raises(ImageTooLarge, match="strips or tiles"):
        decode(data)
    with pytest.raises(ImageTooLarge, match="strips or tiles"):
        decode(pieces_tiff(10, tiles=tiles, order=order), limits=Limits(max_tiff_pieces=9))


def test_a_tiff_in_many_strips_under_the_cap_decodes() -> None:
    decoded = decode(pieces_tiff(600, shared=False))
    assert decoded.format == "TIFF" and (decoded.width, decoded.height) == (4, 600)
    pixels = np.asarray(decoded.image)
    assert pixels[300, 0].tolist() == [300 % 256] * 3
    assert decode(pieces_tiff(40, tiles=True)).height == 640


def test_tiff_pieces_reads_bigtiff_and_gives_up_on_damage() -> None:
    big = b"II+\x00" + struct.pack("<HHQQ", 8, 0, 16, 1) + struct.pack("<HHQQ", 324, 16, 50_000, 0)
    assert tiff_pieces(big) == 50_000
    assert tiff_pieces(pieces_tiff(7, order=">")) == 7
    assert tiff_pieces(b"II*\x00" + struct.pack("<I", 10**9) + bytes(8)) is None
