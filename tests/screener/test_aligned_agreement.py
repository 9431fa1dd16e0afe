"""The aligned agreement in real checks: measured for the leading candidates against the
registered reference's pixels, reported in the evidence, gating the log-odds' margin and
counting both ways (full agreement adds its weight, none takes the contradiction's); each
check beside the same check with the setting off."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageFilter

from screener import Screener, Settings
from screener.core import fusion
from tests import needs
from tests.images import png
from tests.models.test_alignment import badge

needs.module("cv2", "local")
pytestmark = pytest.mark.slow

SIGNAL = "aligned_agreement"


def _screener(data: Path, on: bool) -> Screener:
    screener = Screener(Settings(data_dir=data, signals=["phash", "pdq", "sscd"],
                                 aligned_agreement=on))  # fmt: skip
    screener.registry.register("badge-lo", [png(badge("LOKA"))])
    screener.registry.register("badge-ka", [png(badge("KALU").rotate(90))])
    return screener


@pytest.fixture(scope="module")
def screeners(tmp_path_factory: pytest.TempPathFactory) -> tuple[Screener, Screener]:
    return _screener(tmp_path_factory.mktemp("on"), True), _screener(
        tmp_path_factory.mktemp("off"), False
    )


def _agreement(values: dict[str, float | None]) -> float:
    value = values.get(SIGNAL)
    assert value is not None, "no aligned agreement measured"
    return value


def _match(
    screener: Screener, image: Image.Image, work_id: str
) -> tuple[dict[str, float | None], float]:
    analysis = screener.analyse(png(image), include_works=[work_id])
    (match,) = [m for m in analysis.candidates if m.work_id == work_id]
    return dict(match.signals), match.log_odds


def test_a_copy_agrees_keeps_its_margin_and_gains_the_weight(
    screeners: tuple[Screener, Screener],
) -> None:
    on, off = screeners
    copy = badge("LOKA").filter(ImageFilter.GaussianBlur(2)).resize((300, 300))
    values, log_odds = _match(on, copy, "badge-lo")
    assert _agreement(values) > 0.8
    off_values, off_log_odds = _match(off, copy, "badge-lo")
    assert SIGNAL not in off_values or off_values[SIGNAL] is None
    # Full agreement adds the signal's weight (and its margin past full), takes nothing.
    weight = on.policy.signals[SIGNAL].weight
    assert weight > 0
    assert log_odds >= off_log_odds + weight - 1e-6


def test_a_same_badge_with_other_letters_loses_its_margin(
    screeners: tuple[Screener, Screener],
) -> None:
    on, off = screeners
    lookalike = badge("MOTE")
    values, log_odds = _match(on, lookalike, "badge-lo")
    _, off_log_odds = _match(off, lookalike, "badge-lo")
    assert _agreement(values) < 0.5
    assert fusion.margin(values, on.policy) > 0  # past full on the other signals
    assert log_odds < off_log_odds - 1.0
    _, copy_log_odds = _match(on, badge("LOKA").resize((300, 300)), "badge-lo")
    assert copy_log_odds > log_odds


def test_a_turned_reference_is_met_in_its_own_frame(screeners: tuple[Screener, Screener]) -> None:
    on, _ = screeners
    values, _ = _match(on, badge("KALU"), "badge-ka")  # registered turned by 90 degrees
    assert _agreement(values) > 0.9


def test_the_agreement_is_in_the_verdicts_evidence(screeners: tuple[Screener, Screener]) -> None:
    on, _ = screeners
    verdict = on.check(png(badge("LOKA")))
    top = verdict.matches[0]
    assert top.work_id == "badge-lo"
    assert _agreement(dict(top.signals)) > 0.9
    assert top.regions[SIGNAL].reference_id > 0
