"""Part-level evidence inside checks: an articulated figure in a new pose verifies as
several rigid parts, carried in the verdict (``part_inliers``, ``local.parts`` and the
match's ``character`` evidence), in ``screener check --json`` and drawn in the evidence
picture, each part in its own colour; an unrelated picture gets no parts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from screener import Screener, Settings
from screener.cli import app
from screener.core.samples import scene
from screener.matching import explain
from screener.matching.verification import PART_SIGNAL, SIGNAL
from tests import needs
from tests.articulated import NEW_POSE, REST, figure
from tests.images import png

needs.module("cv2", "local")
pytestmark = pytest.mark.slow

SIGNALS = ["phash", "pdq", "sscd"]


@pytest.fixture(scope="module")
def screener(tmp_path_factory: pytest.TempPathFactory) -> Screener:
    data = tmp_path_factory.mktemp("parts")
    s = Screener(Settings(data_dir=data, signals=SIGNALS))
    s.registry.register("figure", [png(figure(REST))])
    # Bands of its own, as an operator sets them: the pose waits for review (below the
    # policy's review floor, which a work's own bands do not read).
    s.catalog.update_work("figure", thresholds={"review": 0.5, "block": 1.0})
    for k in range(2):
        s.registry.register(f"art-{k}", [png(scene(60 + k, size=(384, 288)))])
    return s


def test_a_new_pose_carries_its_parts_in_the_verdict(screener: Screener) -> None:
    analysis = screener.analyse(png(figure(NEW_POSE)), include_works=["figure"])
    match = next(m for m in analysis.candidates if m.work_id == "figure")
    assert match.local is not None
    parts = match.local["parts"]
    assert len(parts) >= 2 and all(len(p["quad"]) == 4 for p in parts)
    assert match.local["part_inliers"] == sum(p["inliers"] for p in parts)
    local, summed = match.signals[SIGNAL], match.signals[PART_SIGNAL]
    assert local is not None and summed is not None and summed > local
    assert match.character is not None
    assert match.character["parts"] == parts
    assert match.character["part_inliers"] == summed
    assert match.character["closest"] == []  # no semantic signal here
    # Not counted (weight 0) until measured: the parts add nothing to the fused score.
    assert match.contributions.get(PART_SIGNAL, 0.0) == 0.0
    shown = [m for m in analysis.verdict.to_dict()["matches"] if m["work_id"] == "figure"]
    assert shown and shown[0]["character"]["parts"] == parts


def test_an_unrelated_picture_gets_no_parts(screener: Screener) -> None:
    analysis = screener.analyse(png(scene(90)), include_works=["figure"])
    for match in analysis.candidates:
        assert match.signals.get(PART_SIGNAL) is None
        assert match.local is None or match.local["parts"] == []


def _pixels_of(image: Image.Image, colour: tuple[int, int, int]) -> int:
    pixels = np.asarray(image.convert("RGB")).astype(int).reshape(-1, 3)
    return int((np.abs(pixels - np.array(colour)).sum(axis=1) <= 30).sum())


def test_the_evidence_picture_draws_each_part_in_its_colour(screener: Screener) -> None:
    query = png(figure(NEW_POSE))
    picture = Image.open(io.BytesIO(screener.explain(query, "figure").png))
    # The figure's own drawing has none of the part colours: they come from the outlines.
    plain = explain.draw(
        figure(NEW_POSE),
        figure(REST),
        screener.analyse(query, include_works=["figure"]).candidates[0],
        None,
        None,
        (384, 384),
    )
    for colour in explain.PART_COLOURS[:2]:
        assert _pixels_of(picture, colour) > 200 + _pixels_of(plain, colour), colour


def test_cli_json_carries_the_parts(screener: Screener, tmp_path: Path) -> None:
    screener.registry.save()
    query = tmp_path / "pose.png"
    query.write_bytes(png(figure(NEW_POSE)))
    result = CliRunner().invoke(
        app,
        ["check", str(query), "--json", "--data-dir", str(screener.settings.data_dir)],
        env={"SCREENER_SIGNALS": ",".join(SIGNALS)},
    )
    assert result.exit_code == 0, result.output
    row = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("{")))
    assert row["top_work_id"] == "figure"
    assert row["signals"][PART_SIGNAL] > row["signals"][SIGNAL]
    assert len(row["character"]["parts"]) >= 2
    assert row["verdict"]["matches"][0]["local"]["part_inliers"] == row["signals"][PART_SIGNAL]
