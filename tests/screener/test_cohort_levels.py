"""Cohort levels: each candidate work's stored fingerprints screened against every other
registered work, exactly as a check scores a query (`score_exact`), and the k-th closest
other work taken; computed afresh whenever the registry changes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from screener import Screener, Settings
from screener.core import fusion
from screener.core import policy as policy_mod
from screener.core.samples import drawing, scene
from screener.matching.candidates import score_exact
from screener.matching.signals import RegionFingerprint
from screener.models import Fingerprint
from tests.images import png

pytestmark = [pytest.mark.slow, pytest.mark.sscd]
SIGNALS = ["phash", "pdq", "sscd"]


def _policy(k: int) -> policy_mod.Policy:
    default = policy_mod.load(None)
    return replace(default, matching=replace(default.matching, cohort_k=k))


def _brute_force(sc: Screener, work_id: str, k: int) -> dict[str, float]:
    """The work's cohort levels, one other work at a time, through `score_exact`."""
    floor = sc.policy.matching.pdq_min_quality
    others = [w.id for w in sc.catalog.list_works() if w.id != work_id]
    seen: dict[str, list[float]] = {}
    for signal, fingerprinter in sc.signals.available.items():
        binary = fingerprinter.kind == "binary"
        spec = fingerprinter.spec_id
        query = [
            RegionFingerprint(
                signal,
                ref.region,
                Fingerprint(np.frombuffer(ref.vector, np.uint8 if binary else np.float32)),
            )
            for ref in sc.catalog.fingerprints_of_works([work_id], signal, spec)
            if (signal != "pdq" or (ref.quality or 0.0) >= floor) and "/bg-" not in ref.region
        ]
        for other in others:
            stored = sc.catalog.fingerprints_of_works([other], signal, spec)
            found = score_exact(signal, binary, query, stored, floor if signal == "pdq" else None)
            for name, by_work in found.items():
                seen.setdefault(name, []).append(by_work[other].value)
    return {
        name: sorted(values, reverse=not name.endswith("_hamming"))[k - 1]
        for name, values in seen.items()
        if len(values) >= k
    }


def _cohort(signals: dict[str, float | None]) -> dict[str, float]:
    return {
        name.removesuffix(fusion.COHORT_SUFFIX): value
        for name, value in signals.items()
        if name.endswith(fusion.COHORT_SUFFIX) and value is not None
    }


@pytest.mark.parametrize("k", [1, 2])
def test_levels_are_the_kth_closest_other_work_scored_as_a_query(tmp_path: Path, k: int) -> None:
    settings = Settings(data_dir=tmp_path / "data", signals=SIGNALS, background_bank="none")
    works = {f"w{n}": drawing(300 + n) if n % 2 else scene(300 + n) for n in range(5)}
    with Screener(settings, policy=_policy(k)) as sc:
        for work_id, image in works.items():
            sc.registry.register(work_id, [png(image)])
        for work_id, image in works.items():
            match = sc.check(png(image)).matches[0]
            assert match.work_id == work_id
            levels = _cohort(match.signals)
            expected = _brute_force(sc, work_id, k)
            assert levels == pytest.approx(expected, abs=1e-6)
            # Its own references are never its cohort: an exact copy scores 1.0 on SSCD.
            assert levels["sscd_cosine"] < 0.99


def test_levels_follow_the_registry_and_move_the_ramp(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", signals=SIGNALS, background_bank="none")
    hero = drawing(41)
    with Screener(settings, policy=_policy(1)) as sc:
        sc.registry.register("hero", [png(hero)])
        sc.registry.register("other", [png(scene(42))])
        query = png(hero.filter(ImageFilter.GaussianBlur(2)))
        before = sc.check(query).matches[0]
        assert before.work_id == "hero"
        far = _cohort(before.signals)["sscd_cosine"]
        # A second registered work drawn almost like the hero: the hero's cohort is now
        # close, so the same query gets less evidence (never served from the cache).
        twin = hero.rotate(8, fillcolor="white").filter(ImageFilter.GaussianBlur(1))
        sc.registry.register("twin", [png(twin)])
        during = next(m for m in sc.check(query).matches if m.work_id == "hero")
        near = _cohort(during.signals)["sscd_cosine"]
        assert near > far + 0.2
        assert near == pytest.approx(_brute_force(sc, "hero", 1)["sscd_cosine"], abs=1e-6)
        values = {n: v for n, v in during.signals.items() if not n.endswith("_cohort")}
        assert fusion.fuse(during.signals, sc.policy) <= fusion.fuse(values, sc.policy) + 1e-12
        assert during.fused_score == pytest.approx(fusion.fuse(during.signals, sc.policy), abs=1e-6)
        sc.registry.remove("twin")
        after = sc.check(query).matches[0]
        assert _cohort(after.signals)["sscd_cosine"] == pytest.approx(far, abs=1e-6)


def test_no_cohort_levels_when_k_is_zero_or_the_work_is_alone(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", signals=SIGNALS, background_bank="none")
    with Screener(settings, policy=_policy(1)) as sc:
        sc.registry.register("alone", [png(scene(7))])
        assert _cohort(sc.check(png(scene(7))).matches[0].signals) == {}
        sc.registry.register("second", [png(drawing(8))])
        assert _cohort(sc.check(png(scene(7))).matches[0].signals)
        sc.policy = _policy(0)
        assert _cohort(sc.check(png(scene(7))).matches[0].signals) == {}


def test_a_work_registered_twice_still_blocks_its_exact_copies(tmp_path: Path) -> None:
    # Two ids for one drawing are each other's cohort (SSCD 1.0, 0 bits): every ramp moves
    # by its full width, and an exact copy must still block on what is left.
    settings = Settings(data_dir=tmp_path / "data", signals=SIGNALS, background_bank="none")
    hero = drawing(77)
    assert policy_mod.load(None).matching.cohort_k == 1  # the shipped policy uses them
    with Screener(settings) as sc:
        sc.registry.register("hero", [png(hero)])
        sc.registry.register("hero-again", [png(hero)])
        sc.registry.register("other", [png(scene(78))])
        for match in sc.check(png(hero)).matches[:2]:
            assert match.work_id in {"hero", "hero-again"}
            assert _cohort(match.signals)["sscd_cosine"] == pytest.approx(1.0, abs=1e-3)
            assert match.decision == "block"


def test_a_transparent_work_is_one_picture_as_a_query(tmp_path: Path) -> None:
    # "glyph" is transparent (stored over white, black and grey); "on-black" is the
    # same drawing flattened over black. As a query, the glyph is its picture over white:
    # its over-black rendering is reference-side only, so the glyph's cohort is not its
    # own twin. A query that *is* the glyph over black does match it: that is on-black's
    # cohort level, and it is right.
    glyph = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    pen = ImageDraw.Draw(glyph)
    pen.ellipse((40, 40, 216, 216), fill=(230, 60, 20, 255))
    pen.rectangle((90, 100, 170, 150), fill=(20, 120, 230, 255))
    pen.polygon([(128, 20), (150, 70), (106, 70)], fill=(40, 180, 60, 255))
    on_black = Image.new("RGB", glyph.size, (0, 0, 0))
    on_black.paste(glyph, mask=glyph.split()[3])
    settings = Settings(data_dir=tmp_path / "data", signals=SIGNALS, background_bank="none")
    with Screener(settings, policy=_policy(1)) as sc:
        sc.registry.register("glyph", [png(glyph)])
        sc.registry.register("on-black", [png(on_black)])
        sc.registry.register("other", [png(scene(90))])
        regions = {
            f.region
            for f in sc.catalog.fingerprints_of_works(
                ["glyph"], "sscd", sc.signals.available["sscd"].spec_id
            )
        }
        assert any("/bg-black" in r for r in regions)  # stored over black too
        levels = sc._cohort_levels(["glyph", "on-black"])
        assert levels["on-black"]["sscd_cosine"] > 0.95
        assert levels["glyph"]["sscd_cosine"] < levels["on-black"]["sscd_cosine"] - 0.05
        assert levels["glyph"] == pytest.approx(_brute_force(sc, "glyph", 1), abs=1e-6)
