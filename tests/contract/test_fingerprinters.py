"""Every registered fingerprinter against its signal's descriptor, and a new signal added by
one registration call (`toy_signal`) run through the same contract and a real check.

A fingerprinter that cannot run here (CLIP without open_clip) is skipped with the reason
it gives; the others run with their real weights.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from screener import Screener, Settings, models
from screener.core import policy as policy_mod
from screener.core import samples
from screener.matching.candidates import hamming
from screener.models import Fingerprint, Fingerprinter, ModelUnavailable
from tests.contract import toy_signal

SIGNALS = [*models.names(), toy_signal.NAME]


@pytest.fixture(params=SIGNALS)
def fingerprinter(request: pytest.FixtureRequest) -> Iterator[Fingerprinter]:
    name: str = request.param
    if name == toy_signal.NAME:
        request.getfixturevalue("thumb_signal")
    try:
        yield models.create(name)
    except ModelUnavailable as exc:
        pytest.skip(f"{name} cannot run here: {exc}")


def _near_copy(image: Image.Image) -> Image.Image:
    """A resized, recompressed copy: what every signal must find closer than another picture."""
    small = image.resize((image.width * 3 // 4, image.height * 3 // 4), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=75)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _value(a: Fingerprint, b: Fingerprint, metric: str) -> float:
    if metric == "hamming":
        return float(hamming(a.vector[None, :], b.vector[None, :])[0, 0])
    return float(np.dot(a.vector, b.vector))


def test_output_has_the_declared_shape_and_dtype(fingerprinter: Fingerprinter) -> None:
    described = models.descriptor(fingerprinter.name)
    assert described.metric == ("hamming" if fingerprinter.kind == "binary" else "cosine")
    assert fingerprinter.spec_id.startswith(f"{fingerprinter.name}/")
    images = [samples.scene(1), samples.scene(2, (300, 500))]
    prints = fingerprinter.fingerprint(images)
    assert len(prints) == len(images)
    for fp in prints:
        if fingerprinter.kind == "binary":
            assert fingerprinter.dim % 8 == 0
            assert fp.vector.dtype == np.uint8 and fp.vector.shape == (fingerprinter.dim // 8,)
        else:
            assert fp.vector.dtype == np.float32 and fp.vector.shape == (fingerprinter.dim,)
            assert abs(float(np.linalg.norm(fp.vector)) - 1.0) < 1e-4
        if described.quality_floor is not None:
            assert fp.quality is not None and 0.0 <= fp.quality <= 1.0


def test_output_is_deterministic(fingerprinter: Fingerprinter) -> None:
    image = samples.scene(3)
    first = fingerprinter.fingerprint([image])[0]
    again = fingerprinter.fingerprint([image.copy()])[0]
    assert np.array_equal(first.vector, again.vector)
    assert first.quality == again.quality


def test_metric_direction_ranks_a_near_copy_above_another_picture(
    fingerprinter: Fingerprinter,
) -> None:
    described = models.descriptor(fingerprinter.name)
    for seed in (4, 5, 6):
        original = samples.scene(seed)
        work, copy, other = fingerprinter.fingerprint(
            [original, _near_copy(original), samples.scene(seed + 10)]
        )
        near = _value(work, copy, described.metric)
        far = _value(work, other, described.metric)
        assert (near < far) if described.lower_is_closer else (near > far), (seed, near, far)


def test_descriptor_names_real_settings_and_policy_entries(fingerprinter: Fingerprinter) -> None:
    described = models.descriptor(fingerprinter.name)
    factory_keywords = inspect.signature(models.base._REGISTRY[fingerprinter.name]).parameters
    for keyword, setting in described.options.items():
        assert keyword in factory_keywords
        assert setting in Settings.model_fields
    if described.quality_floor is not None:
        matching_fields = {f.name for f in dataclasses.fields(policy_mod.Matching)}
        assert described.quality_floor in matching_fields
    evidence = policy_mod.image_evidence()
    assert set(described.own_evidence) <= set(evidence)
    assert set(described.own_evidence) <= set(policy_mod.families()[described.family])


def test_every_packaged_signal_has_its_policy_entries() -> None:
    """Adding a signal is one module and one policy entry: the shipped policy has them."""
    default = policy_mod.load()
    for name, described in models.descriptors().items():
        assert {described.evidence, described.region_evidence} <= set(default.signals), name


def test_a_second_signal_may_not_take_an_existing_evidence_name() -> None:
    clash = dataclasses.replace(toy_signal.THUMB_SIGNAL, evidence="pdq_hamming")
    with pytest.raises(ValueError, match="pdq"):
        models.register("imposter", descriptor=clash)
    assert "imposter" not in models.names()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_a_real_check_runs_the_new_signal(thumb_signal: str, tmp_path: Path) -> None:
    """The new signal drives a whole check with nothing but policy entries for it: it is a
    known signal in the settings, its evidence is calibrated, fused and reported, and a
    block may rest on it once the policy's ``block_evidence`` names it."""
    document = yaml.safe_load(policy_mod.dumps(policy_mod.load()))
    document["version"] = "with-thumb"
    document["signals"]["thumb_cosine"] = {"lo": 0.6, "hi": 0.95, "weight": 14.0}
    document["block_evidence"]["signals"].append("thumb_cosine")
    # The shipped floor on evidence in all is in the shipped weights' units and assumes
    # several signals; this check runs one, so its policy sets none.
    document["block_evidence"]["min_log_odds"] = None
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(document), encoding="utf-8")
    settings = Settings(
        data_dir=tmp_path / "data",
        signals=[thumb_signal],
        policy_path=policy_path,
        local_features=False,
        background_bank="none",
    )
    original = samples.scene(21)
    with Screener(settings) as screener:
        assert screener.signals.names == [thumb_signal]
        screener.registry.register("thumbed", [_png(original)])
        copy = screener.check(_png(_near_copy(original)))
        other = screener.check(_png(samples.scene(40)))
    assert copy.decision == "block" and copy.top_work_id == "thumbed"
    assert copy.signals_used == (thumb_signal,)
    assert copy.matches[0].signals["thumb_cosine"] is not None
    assert copy.matches[0].signals["thumb_cosine"] > 0.95
    assert other.decision == "allow"


def test_settings_refuse_a_signal_nobody_registered() -> None:
    with pytest.raises(ValueError, match="unknown signal"):
        Settings(signals=[toy_signal.NAME])


def test_the_new_signal_is_known_to_settings_once_registered(thumb_signal: str) -> None:
    assert Settings(signals=[thumb_signal]).signals == [thumb_signal]
    # Not on by default (its descriptor says so), and the packaged signals keep their order.
    assert thumb_signal not in Settings().signals
    assert "thumb_cosine" in policy_mod.image_evidence()
    assert policy_mod.families()["thumb"] == ("thumb_cosine", "thumb_region_cosine")


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"evidence": "Thumb cosine"}, "lower-case words"),
        ({"evidence": "thumb"}, "lower-case words"),
        ({"metric": "euclid"}, "metric"),
        ({"family": " "}, "family"),
    ],
)
def test_a_descriptor_refuses_what_it_cannot_mean(changes: dict[str, str], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        dataclasses.replace(toy_signal.THUMB_SIGNAL, **changes)  # type: ignore[arg-type]
