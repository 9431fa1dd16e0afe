"""The background bank: built from generic images (never copies of registered works),
normalising SSCD in every verdict, named in the index version, refused when damaged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from screener import Screener, Settings
from screener.cli import app
from screener.core import fusion
from screener.core.errors import ConfigurationError
from screener.core.samples import drawing, scene
from screener.matching.background import MANIFEST, MIN_IMAGES, SIGNALS, VECTORS
from tests.images import png

pytestmark = [pytest.mark.slow, pytest.mark.sscd]
ENV = {"SCREENER_SIGNALS": "phash,pdq,sscd"}


def test_build_normalises_sscd_and_names_the_bank(tmp_path: Path) -> None:
    data = tmp_path / "data"
    work = scene(5)
    settings = Settings(data_dir=data, signals=["phash", "pdq", "sscd"], background_bank="none")
    with Screener(settings) as screener:
        screener.registry.register("hero", [png(work)])
        before = screener.check(png(work))
        assert "sscd_norm_cosine" not in before.matches[0].signals
    generic = tmp_path / "generic"
    generic.mkdir()
    for k in range(MIN_IMAGES + 4):
        image = drawing(500 + k) if k % 2 else scene(500 + k)
        image.save(generic / f"g{k:02d}.png")
    work.save(generic / "copy-of-hero.png")  # must be left out
    (generic / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")

    runner = CliRunner()
    built = runner.invoke(
        app, ["background", "build", str(generic), "--data-dir", str(data)], env=ENV
    )
    assert built.exit_code == 0, built.output
    said = " ".join(built.output.split())  # rich wraps long lines
    assert f"{MIN_IMAGES + 4} images (1 left out" in said
    assert "broken.png" in built.output

    shown = runner.invoke(app, ["background", "show", "--data-dir", str(data)], env=ENV)
    shown_text = " ".join(shown.output.split())
    assert shown.exit_code == 0 and f"{MIN_IMAGES + 4} images" in shown_text
    assert "generic levels for pdq, phash, sscd" in shown_text

    with Screener(Settings(data_dir=data, signals=["phash", "pdq", "sscd"])) as screener:
        bank = screener.background
        assert bank is not None and bank.count == MIN_IMAGES + 4
        verdict = screener.check(png(work))
        assert verdict.index_version.endswith(f"+bg-{bank.digest[:12]}")
        values = verdict.matches[0].signals
        raw, norm = values["sscd_cosine"], values["sscd_norm_cosine"]
        assert raw is not None and norm is not None
        whole = np.asarray(
            next(
                f.fingerprint.vector
                for f in screener.signals.fingerprint(
                    screener.decode(png(work)).image, dihedral=False
                )
                if f.signal == "sscd" and f.region == "whole"
            ),
            dtype=np.float32,
        )
        kth = np.sort(bank.vectors @ whole)[::-1][screener.policy.matching.background_k - 1]
        assert abs((raw - norm) - float(kth)) < 1e-3

        # Every signal's generic level for the work rides beside its raw value, as the
        # bank gives it for the work's stored fingerprints, and moves the ramps.
        assert set(bank.rows) == {"phash", "pdq", "sscd"}
        k = screener.policy.matching.background_k
        for signal in bank.rows:
            stored = screener.catalog.fingerprints_of_works(
                ["hero"], signal, screener.signals.available[signal].spec_id
            )
            floor = screener.policy.matching.pdq_min_quality if signal == "pdq" else None
            for name, by_work in bank.levels(signal, stored, k, floor).items():
                assert values[fusion.generic_name(name)] == pytest.approx(by_work["hero"])
        assert values["sscd_cosine_generic"] is not None and values["pdq_hamming_generic"]
        expected = fusion.fuse(values, screener.policy)
        assert verdict.matches[0].fused_score == pytest.approx(expected, abs=1e-6)

    # A bank from before the per-signal rows still normalises SSCD, with no levels.
    folder = data / "background"
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["signals"], manifest["signals_sha256"]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    (folder / SIGNALS).unlink()
    with Screener(Settings(data_dir=data, signals=["phash", "pdq", "sscd"])) as screener:
        assert screener.background is not None and not screener.background.rows
        values = screener.check(png(work)).matches[0].signals
        assert values["sscd_norm_cosine"] is not None
        assert not any(name.endswith(fusion.GENERIC_SUFFIX) for name in values)


def test_a_damaged_or_tiny_bank_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generic = tmp_path / "generic"
    generic.mkdir()
    for k in range(5):
        scene(600 + k).save(generic / f"g{k}.png")
    runner = CliRunner()
    tiny = runner.invoke(
        app, ["background", "build", str(generic), "--data-dir", str(data)], env=ENV
    )
    assert tiny.exit_code != 0 and f"at least {MIN_IMAGES}" in " ".join(tiny.output.split())
    assert not (data / "background" / VECTORS).exists()  # nothing half-written

    for k in range(5, MIN_IMAGES + 1):
        scene(600 + k).save(generic / f"g{k}.png")
    assert (
        runner.invoke(
            app, ["background", "build", str(generic), "--data-dir", str(data)], env=ENV
        ).exit_code
        == 0
    )
    signals = data / "background" / SIGNALS
    kept = signals.read_bytes()
    signals.write_bytes(kept[: len(kept) // 2])  # truncated
    with pytest.raises(ConfigurationError, match="damaged"):
        Screener(Settings(data_dir=data, signals=["phash", "pdq", "sscd"]))
    signals.write_bytes(kept)
    vectors = data / "background" / VECTORS
    raw = bytearray(vectors.read_bytes())
    raw[-7] ^= 0xFF
    vectors.write_bytes(bytes(raw))
    with pytest.raises(ConfigurationError, match="damaged"):
        Screener(Settings(data_dir=data, signals=["phash", "pdq", "sscd"]))
    shown = runner.invoke(app, ["background", "show", "--data-dir", str(data)], env=ENV)
    assert shown.exit_code != 0 and "screener background build" in " ".join(shown.output.split())


def test_a_data_directory_without_a_bank_uses_the_packaged_one(tmp_path: Path) -> None:
    work = drawing(41)
    with Screener(Settings(data_dir=tmp_path / "data", signals=["phash", "pdq", "sscd"])) as sc:
        bank = sc.background
        assert bank is not None and bank.source.startswith("packaged")
        assert bank.count >= 500 and set(bank.rows) == {"phash", "pdq", "sscd"}
        sc.registry.register("glyph", [png(work)])
        verdict = sc.check(png(work))
        values = verdict.matches[0].signals
        assert values["sscd_norm_cosine"] is not None
        assert values["sscd_cosine_generic"] is not None
        assert verdict.index_version.endswith(f"+bg-{bank.digest[:12]}")
        assert verdict.matches[0].decision == "block"  # an exact copy still blocks

        def levels_now() -> dict[str, float]:
            stored = sc.catalog.fingerprints_of_works(
                ["glyph"], "sscd", sc.signals.available["sscd"].spec_id
            )
            k = sc.policy.matching.background_k
            return {
                fusion.generic_name(n): by_work["glyph"]
                for n, by_work in bank.levels("sscd", stored, k).items()
            }

        # The work's references change: its levels are computed afresh, never served
        # stale from the cache.
        before = levels_now()
        first = sc.registry.register("glyph", [png(scene(43))]).added_references
        assert first
        for reference_id in {
            f.reference_id
            for f in sc.catalog.fingerprints_of_works(
                ["glyph"], "sscd", sc.signals.available["sscd"].spec_id
            )
        } - set(first):
            sc.registry.remove_reference("glyph", reference_id)
        after = levels_now()
        assert after != before  # a photo-like scene instead of a flat drawing
        seen = sc.check(png(scene(43))).matches[0].signals
        for name, level in after.items():
            assert seen[name] == pytest.approx(level)
    shown = CliRunner().invoke(
        app, ["background", "show", "--data-dir", str(tmp_path / "data")], env=ENV
    )
    assert shown.exit_code == 0 and "packaged" in shown.output
    off = Settings(
        data_dir=tmp_path / "data", signals=["phash", "pdq", "sscd"], background_bank="none"
    )
    with Screener(off) as sc:
        assert sc.background is None
        values = sc.check(png(scene(43))).matches[0].signals
        assert "sscd_norm_cosine" not in values and "sscd_cosine_generic" not in values
