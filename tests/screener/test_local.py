"""Local-feature verification inside checks: stored per reference, evidence with the
matched region, back-filled for older catalogs, gone with the work, and drawn."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from screener import Screener, Settings
from screener.cli import app
from screener.core.errors import NotFound
from screener.core.policy import Policy
from screener.core.samples import drawing, scene
from screener.matching.verification import SIGNAL
from tests import needs
from tests.images import composite, png

needs.module("cv2", "local")
pytestmark = pytest.mark.slow


WORKS = {f"art-{k}": scene(40 + k, size=(384, 288)) for k in range(3)}


@pytest.fixture(scope="module")
def screener(tmp_path_factory: pytest.TempPathFactory) -> Screener:
    data = tmp_path_factory.mktemp("local")
    s = Screener(Settings(data_dir=data, signals=["phash", "pdq", "sscd"]))
    for work_id, art in WORKS.items():
        s.registry.register(work_id, [png(art)])
    s.registry.register("char", [png(drawing(3, transparent=True))])
    return s


def test_references_store_local_features_and_removal_takes_them(screener: Screener) -> None:
    assert screener.local is not None
    spec = screener.local.spec_id
    stored = screener.catalog.local_features_of_works([*WORKS, "char"], spec)
    variants = {(f.work_id, f.variant) for f in stored}
    assert {(w, "white") for w in WORKS} <= variants
    assert ("char", "black") in variants  # transparent: also over black
    assert ("art-0", "black") not in variants
    screener.registry.register("gone", [png(scene(77))])
    assert screener.catalog.local_features_of_works(["gone"], spec)
    screener.registry.remove("gone")
    assert not screener.catalog.local_features_of_works(["gone"], spec)
    assert screener.catalog.references_without_local(spec) == []


def test_a_composite_is_matched_with_its_region(screener: Screener) -> None:
    work = WORKS["art-1"]
    at, scale = (200, 150), 0.8
    analysis = screener.analyse(png(composite(work, 5, at, scale)))
    match = next(m for m in analysis.candidates if m.work_id == "art-1")
    assert match.local is not None
    inliers = match.signals[SIGNAL]
    assert inliers is not None and inliers >= 20
    quad = np.array(match.local["quad"])
    expected = np.array(
        [
            [at[0], at[1]],
            [at[0] + work.width * scale, at[1]],
            [at[0] + work.width * scale, at[1] + work.height * scale],
            [at[0], at[1] + work.height * scale],
        ]
    )
    assert np.abs(quad - expected).max() < 10, quad
    assert analysis.verdict.timings_ms["verify"] > 0
    data = json.loads(json.dumps(analysis.verdict.to_dict()))  # plain data all the way
    reported = [m for m in data["matches"] + data["near_misses"] if m["work_id"] == "art-1"]
    assert reported and reported[0]["local"]["inliers"] == match.local["inliers"]


def test_unrelated_scenes_get_no_local_evidence(screener: Screener) -> None:
    for seed in (300, 301, 302):
        analysis = screener.analyse(png(scene(seed, size=(512, 384))))
        assert analysis.verdict.decision == "allow"
        assert all((m.signals.get(SIGNAL) or 0) < 12 for m in analysis.candidates)


def with_matching(screener: Screener, **changes: Any) -> Policy:
    return dataclasses.replace(
        screener.policy, matching=dataclasses.replace(screener.policy.matching, **changes)
    )


def test_the_descriptor_index_proposes_a_work_the_global_signals_do_not(
    screener: Screener, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert screener.local is not None
    # A small copy of art-2 in a busy new scene.
    query = png(composite(WORKS["art-2"], 11, (420, 300), 0.45))
    features = screener.local.extract(screener.decode(query).image)
    voted = screener.local.votes.vote(features, top=5, min_votes=5)
    # Drawn scenes share shapes, so other works get votes too; art-2 is among the few.
    assert "art-2" in [w for w, _ in voted[:3]], voted
    # The global searches propose nothing here (as for a copy too small for them), so
    # only the votes can bring art-2 in.
    monkeypatch.setattr(screener, "_propose", lambda by_signal: {})
    monkeypatch.setattr(screener, "policy", with_matching(screener, vote_top=0))
    without = screener.analyse(query)
    monkeypatch.setattr(screener, "policy", with_matching(screener, vote_top=5))
    with_votes = screener.analyse(query)
    assert "art-2" in with_votes.local and "art-2" not in without.local
    match = next(m for m in with_votes.candidates if m.work_id == "art-2")
    assert (match.signals[SIGNAL] or 0) >= 15


def test_the_descriptor_index_follows_registrations_made_elsewhere(screener: Screener) -> None:
    assert screener.local is not None
    art = scene(91, size=(384, 288))
    query = png(composite(art, 12, (60, 40), 0.6))
    features = screener.local.extract(screener.decode(query).image)
    screener.registry.save()
    with Screener(screener.settings) as other:  # another process on the same catalog
        other.registry.register("elsewhere", [png(art)])
        other.registry.save()
        screener.refresh()
        assert screener.local.votes.vote(features, 5, 5)[0][0] == "elsewhere"
        other.registry.remove("elsewhere")
        other.registry.save()
    screener.refresh()
    assert "elsewhere" not in dict(screener.local.votes.vote(features, 5, 1))


def test_keypoints_are_read_once_then_cached_until_removed(
    screener: Screener, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert screener.local is not None
    read: list[int] = []
    real = screener.catalog.local_features_by_rows

    def counting(rows: Any) -> Any:
        rows = list(rows)
        read.extend(rows)
        return real(rows)

    monkeypatch.setattr(screener.catalog, "local_features_by_rows", counting)
    art = scene(92, size=(384, 288))
    screener.registry.register("cached", [png(art)])
    query = png(composite(art, 13, (50, 50), 0.7))
    first = screener.analyse(query, include_works=["cached"])
    rows = [r for r, w in screener.catalog.local_feature_rows(screener.local.spec_id).items()]
    assert set(read) <= set(rows) and read  # the first check read from the catalog
    read.clear()
    second = screener.analyse(query, include_works=["cached"])
    assert read == []  # the second found every set in the cache
    assert first.local["cached"].inliers == second.local["cached"].inliers >= 20
    own = [
        r
        for r, w in screener.catalog.local_feature_rows(screener.local.spec_id).items()
        if w == "cached"
    ]
    screener.registry.remove("cached")
    assert not any(r in screener.local._cache for r in own)
    assert "cached" not in screener.analyse(query).local


def test_older_catalogs_are_backfilled_at_start(tmp_path: Path) -> None:
    signals = ["phash", "pdq"]
    with Screener(Settings(data_dir=tmp_path, signals=signals, local_features=False)) as old:
        assert old.local is None
        old.registry.register("w", [png(WORKS["art-0"])])
        assert "local" not in old.signals.missing
    with Screener(Settings(data_dir=tmp_path, signals=signals)) as new:
        assert new.local is not None
        assert new.catalog.local_features_of_works(["w"], new.local.spec_id)
        crop = WORKS["art-0"].crop((0, 0, 250, 288))
        analysis = new.analyse(png(crop), include_works=["w"])
        match = next(m for m in analysis.candidates if m.work_id == "w")
        assert (match.signals.get(SIGNAL) or 0) >= 20


def test_evidence_picture_outlines_the_region(screener: Screener, tmp_path: Path) -> None:
    query = png(composite(WORKS["art-2"], 6, (40, 260), 0.7))
    picture = screener.explain(query)
    assert picture.work_id == "art-2"
    image = Image.open(io.BytesIO(picture.png))
    assert image.format == "PNG" and image.size == (picture.width, picture.height)
    assert 600 <= image.width <= 900 and 300 <= image.height <= 600
    assert len(picture.png) < 1_000_000
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    red = (pixels[:, 0] > 200) & (pixels[:, 1] < 60) & (pixels[:, 2] < 60)
    assert red.sum() > 500  # the outline was drawn
    with pytest.raises(NotFound):
        screener.explain(query, "no-such-work")


def test_cli_check_writes_evidence_pictures(screener: Screener, tmp_path: Path) -> None:
    data_dir = screener.settings.data_dir
    screener.registry.save()
    copy = tmp_path / "copy.png"
    copy.write_bytes(png(composite(WORKS["art-0"], 8, (100, 60), 0.9)))
    other = tmp_path / "other.png"
    other.write_bytes(png(Image.new("RGB", (300, 200), (250, 250, 250))))
    runner = CliRunner()
    out = tmp_path / "copy-evidence.png"
    env = {"SCREENER_SIGNALS": "phash,pdq,sscd"}
    result = runner.invoke(
        app,
        ["check", str(copy), "--explain", str(out), "--json", "--data-dir", str(data_dir)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    row = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("{")))
    assert row["evidence_picture"] == str(out)
    assert Image.open(out).format == "PNG"
    folder = tmp_path / "pictures"
    result = runner.invoke(
        app,
        ["check", str(copy), str(other), "--explain", str(folder), "--data-dir", str(data_dir)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert (folder / "copy-evidence.png").is_file()
    bad = runner.invoke(
        app,
        ["check", str(copy), "--explain", str(tmp_path / "x.txt"), "--data-dir", str(data_dir)],
        env=env,
    )
    assert bad.exit_code != 0 and "PNG" in bad.output
