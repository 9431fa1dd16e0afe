"""Fingerprinters: shapes, spec ids, robustness, and clear errors when one cannot run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from screener import Settings, models
from screener.core import samples
from screener.core.errors import SignalUnavailable
from screener.matching.candidates import hamming
from screener.matching.signals import SignalSet
from screener.models import ModelUnavailable


def _bits(fp: models.Fingerprint) -> np.ndarray:
    return fp.vector[None, :]


@pytest.mark.parametrize(("name", "bits"), [("phash", 64), ("pdq", 256)])
def test_hashes_have_their_size_and_a_spec_id(name: str, bits: int) -> None:
    fingerprinter = models.create(name)
    assert fingerprinter.dim == bits and fingerprinter.kind == "binary"
    assert fingerprinter.spec_id.startswith(f"{name}/")
    fp = fingerprinter.fingerprint([samples.scene(1)])[0]
    assert fp.vector.dtype == np.uint8 and fp.vector.shape == (bits // 8,)


@pytest.mark.parametrize("name", ["phash", "pdq"])
def test_dihedral_variants_match_the_transformed_image(name: str) -> None:
    fingerprinter = models.create(name)
    assert isinstance(fingerprinter, models.DihedralFingerprinter)
    image = samples.scene(4)
    variants = fingerprinter.fingerprint_dihedral(image)
    assert len(variants) == 8
    mirrored = fingerprinter.fingerprint([image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])[0]
    table = np.stack([v.vector for v in variants])
    assert int(hamming(_bits(mirrored), table).min()) <= 0.1 * fingerprinter.dim
    other = fingerprinter.fingerprint([samples.scene(5)])[0]
    assert int(hamming(_bits(other), table).min()) > 0.2 * fingerprinter.dim


def test_pdq_quality_is_low_for_a_flat_image() -> None:
    pdq = models.create("pdq")
    flat = pdq.fingerprint([Image.new("RGB", (256, 256), (200, 30, 30))])[0]
    busy = pdq.fingerprint([samples.scene(2)])[0]
    assert flat.quality is not None and busy.quality is not None
    assert flat.quality < 0.5 <= busy.quality


@pytest.mark.sscd
def test_sscd_gives_unit_vectors_that_see_copies() -> None:
    sscd = models.create("sscd")
    assert sscd.kind == "dense" and sscd.dim == 512
    image = samples.scene(8)
    a, b, c = sscd.fingerprint([image, image.resize((200, 150)), samples.scene(9, (300, 500))])
    for fp in (a, b, c):
        assert abs(float(np.linalg.norm(fp.vector)) - 1.0) < 1e-4
    assert float(a.vector @ b.vector) > 0.9
    assert float(a.vector @ c.vector) < float(a.vector @ b.vector) - 0.2


@pytest.mark.sscd
def test_sscd_batches_images_of_different_shapes_in_order() -> None:
    sscd = models.create("sscd")
    images = [samples.scene(i, (200 + 40 * i, 180)) for i in range(4)]
    batched = sscd.fingerprint(images)
    single = [sscd.fingerprint([im])[0] for im in images]
    for x, y in zip(batched, single, strict=True):
        assert float(x.vector @ y.vector) > 0.999


def test_sscd_names_a_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="does not exist"):
        models.create("sscd", weights=tmp_path / "absent.onnx")


def test_unknown_fingerprinter_is_named() -> None:
    with pytest.raises(KeyError, match="unknown fingerprinter 'nope'"):
        models.create("nope")


def _clip_importable() -> bool:
    try:
        import open_clip  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.skipif(_clip_importable(), reason="open_clip imports here: covered by the test below")
def test_clip_missing_says_how_to_install_it() -> None:
    with pytest.raises(ModelUnavailable, match="clip extra"):
        models.create("clip")


@pytest.mark.skipif(not _clip_importable(), reason="open_clip cannot import next to this torch")
def test_clip_shapes_with_random_weights() -> None:  # pragma: no cover - needs open_clip
    clip = models.create("clip", random_weights=True)
    fps = clip.fingerprint([samples.scene(1), samples.drawing(2)])
    assert all(abs(float(np.linalg.norm(f.vector)) - 1) < 1e-4 for f in fps)
    text = clip.embed_text(["a bridge"])  # type: ignore[attr-defined]
    assert text.shape == (1, clip.dim)


def test_missing_signal_is_reported_and_required_signal_is_an_error(tmp_path: Path) -> None:
    if _clip_importable():
        pytest.skip("CLIP can be imported here")
    settings = Settings(data_dir=tmp_path, signals=["phash", "clip"])
    signals = SignalSet(settings, region_min_quality=0.5)
    assert signals.names == ["phash"]
    assert "clip extra" in signals.missing["clip"]
    strict = Settings(data_dir=tmp_path, signals=["phash", "clip"], require_signals=["clip"])
    with pytest.raises(SignalUnavailable, match="required signal"):
        SignalSet(strict, region_min_quality=0.5)


def test_settings_read_signal_lists_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCREENER_SIGNALS", "pdq, phash")
    assert Settings().signals == ["pdq", "phash"]
    monkeypatch.setenv("SCREENER_SIGNALS", "pdq,telepathy")
    with pytest.raises(ValueError, match="unknown signal"):
        Settings()
