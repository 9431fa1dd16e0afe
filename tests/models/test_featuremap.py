"""Windows of SSCD's feature map: the window geometry, GeM pooling over a summed-area
table, and (real weights) that the whole map through the head is the model's own output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from screener import Settings, models
from screener.core import samples
from screener.core.errors import SignalUnavailable
from screener.matching.signals import SignalSet
from screener.models.featuremap import GemHead, windows
from screener.models.sscd import SSCD


def _head(channels: int = 6, dim: int = 4, seed: int = 0) -> GemHead:
    rng = np.random.default_rng(seed)
    return GemHead(
        weight=rng.normal(size=(dim, channels)).astype(np.float32),
        bias=rng.normal(size=dim).astype(np.float32),
        p=3.0,
        eps=1e-6,
    )


def test_windows_cover_each_scale_at_a_stride_of_one_cell_whole_map_first() -> None:
    found = windows(10, 16, [0.5])
    assert found[0] == (0, 0, 10, 16)
    # 5x8 windows (the map's aspect): 6 x 9 positions; 8x8 squares (half the long side):
    # 3 x 9 positions; the whole map once.
    assert len(found) == 1 + 6 * 9 + 3 * 9
    assert all(0 <= t < b <= 10 and 0 <= left < r <= 16 for t, left, b, r in found)
    assert len(set(found)) == len(found)


def test_windows_leave_out_single_cells_and_refuse_bad_fractions() -> None:
    assert windows(4, 4, [0.2]) == [(0, 0, 4, 4)]
    with pytest.raises(ValueError, match="fraction"):
        windows(4, 4, [1.5])
    with pytest.raises(ValueError, match="no windows"):
        windows(0, 4, [0.5])


def test_pooling_a_window_equals_gem_of_its_cells() -> None:
    rng = np.random.default_rng(1)
    fmap = rng.uniform(0.0, 2.0, size=(6, 5, 7)).astype(np.float32)
    head = _head()
    cells = [(0, 0, 5, 7), (1, 2, 4, 6), (3, 0, 5, 2)]
    pooled = head.pool(fmap, cells)
    assert pooled.shape == (3, 6)
    for row, (t, left, b, r) in zip(pooled, cells, strict=True):
        part = fmap[:, t:b, left:r].reshape(6, -1)
        expected = np.mean(np.maximum(part, 1e-6) ** 3, axis=1) ** (1 / 3)
        assert np.allclose(row, expected, rtol=1e-5)
    described = head.describe(fmap, cells)
    assert described.shape == (3, 4)
    assert np.allclose(np.linalg.norm(described, axis=1), 1.0, atol=1e-5)


def test_pooling_refuses_windows_off_the_map() -> None:
    head = _head()
    fmap = np.ones((6, 3, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="outside"):
        head.pool(fmap, [(0, 0, 4, 3)])
    with pytest.raises(ValueError, match="empty"):
        head.pool(fmap, [(1, 1, 1, 3)])
    assert head.pool(fmap, []).shape == (0, 6)


@pytest.mark.sscd
def test_the_whole_map_through_the_head_is_the_models_own_embedding() -> None:
    sscd = models.create("sscd")
    assert isinstance(sscd, SSCD)
    image = samples.scene(5, (480, 320))
    found = sscd.windows(image, 480, [0.5])
    whole = found[0]
    assert whole.box == (0.0, 0.0, 1.0, 1.0)
    # The model's own output for the same 480x320 input (short side 320: no resize).
    sscd.short_side = 320
    (own,) = sscd.fingerprint([image])
    assert float(np.dot(whole.fingerprint.vector, own.vector)) > 0.9999
    # Windows are other descriptors, each a unit vector.
    vectors = np.stack([w.fingerprint.vector for w in found])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert float(np.min(vectors @ own.vector)) < 0.99


@pytest.mark.sscd
def test_windows_on_a_graph_without_a_gem_head_stop_start_up_clearly(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, signals=["sscd"], sscd_model="sscd_distilled", sscd_windows=True
    )
    with pytest.raises(SignalUnavailable, match=r"SCREENER_SSCD_WINDOWS cannot run.*GeM"):
        SignalSet(settings, region_min_quality=0.0)
    # The same model without the windows starts.
    SignalSet(settings.model_copy(update={"sscd_windows": False}), region_min_quality=0.0)
