"""Checking several images in one call gives each the verdict it gets alone."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import ImageFilter

from screener import Screener, Settings
from screener.core.errors import UnsupportedFormat
from screener.core.samples import scene
from screener.matching.pipeline import CheckItem

pytestmark = pytest.mark.slow


def test_batched_verdicts_equal_single_ones(tmp_path: Path) -> None:
    def jpeg(seed: int, blur: float = 0.0) -> bytes:
        buffer = io.BytesIO()
        scene(seed).filter(ImageFilter.GaussianBlur(blur)).save(buffer, "JPEG", quality=85)
        return buffer.getvalue()

    with Screener(Settings(data_dir=tmp_path)) as screener:
        for seed in (1, 2, 3):
            screener.registry.register(f"w{seed}", [jpeg(seed)])
        images = [jpeg(1, 1.0), jpeg(9), jpeg(3, 0.5), b"plain text, not an image"]
        batched = screener.analyse_many([CheckItem(image) for image in images])
        assert isinstance(batched[3], UnsupportedFormat)
        for image, result in zip(images[:3], batched[:3], strict=True):
            assert not isinstance(result, Exception)
            alone = screener.check(image)
            assert result.verdict.decision == alone.decision
            assert result.verdict.top_work_id == alone.top_work_id
            assert result.verdict.fused_score == pytest.approx(alone.fused_score, abs=1e-4)
            assert result.query  # the fingerprints a notice re-screens later
        decisions = [r.verdict.decision for r in batched[:3] if not isinstance(r, Exception)]
        assert decisions == ["block", "allow", "block"]
