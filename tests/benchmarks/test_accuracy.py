"""The accuracy benchmark on a tiny suite, and its pure parts on their own."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from screener.bench import accuracy, accuracy_fit, accuracy_run, lodo_report, suite, thresholds
from screener.bench.cli import app as bench_app
from screener.bench.transforms import TRANSFORMS
from screener.core import fusion, samples
from screener.core import policy as policy_mod


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for i in range(12):
        art = samples.drawing(i, transparent=i % 3 == 0) if i % 2 == 0 else samples.scene(i)
        art.save(folder / f"img{i:02d}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_every_transform_returns_an_rgb_image(name: str) -> None:
    work = samples.drawing(3, transparent=True)
    out = TRANSFORMS[name](work, np.random.default_rng(0))
    assert out.mode == "RGB"
    assert min(out.size) >= 16
    again = TRANSFORMS[name](work, np.random.default_rng(0))
    assert np.array_equal(np.asarray(out), np.asarray(again)), "transforms must be seeded"


def test_threshold_at_lets_through_at_most_the_rate() -> None:
    negatives = np.arange(1000, dtype=np.float64)
    t = accuracy.threshold_at(negatives, 0.01)
    assert (negatives >= t).mean() <= 0.01
    assert (negatives >= np.nextafter(t, -math.inf) - 1).mean() > 0.01
    assert accuracy.threshold_at(np.array([]), 0.01) == -math.inf


@pytest.mark.parametrize(
    ("size", "fpr", "through"), [(1000, 0.001, 0), (1500, 0.001, 1), (1000, 0.01, 9), (50, 0.01, 0)]
)
def test_a_band_lets_through_strictly_fewer_than_the_target(
    size: int, fpr: float, through: int
) -> None:
    negatives = np.random.default_rng(size).permutation(size).astype(np.float64)
    band = thresholds.strictly_below(negatives, fpr)
    assert int((negatives >= band).sum()) == through
    # The measuring threshold lets the rate itself through where it is a whole count.
    at_rate = int((negatives >= accuracy.threshold_at(negatives, fpr)).sum())
    assert at_rate == math.floor(fpr * size + 1e-9) >= through


def _record(
    truth: str | None,
    sscd: float,
    group: str,
    values: dict[str, float | None] | None = None,
    category: str = "jpeg",
) -> accuracy.Record:
    values = values if values is not None else {"sscd_cosine": sscd, "pdq_hamming": None}
    return accuracy.Record(
        f"{group}-x", category, group, truth, values, 0.0, None, "allow", 0.01, (("w", values),)
    )


def test_fit_falls_back_where_the_inner_winner_cannot_be_fitted_on_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The way of fitting that does best on the inner split is refitted on all the records;
    # where that fails (a weight that held on part of them need not on all), the next best
    # is taken, rather than no policy at all.
    rng = np.random.default_rng(2)
    records = [_record("w", float(rng.uniform(0.6, 1.0)), f"p{i}") for i in range(100)]
    records += [_record(None, float(rng.uniform(-0.2, 0.5)), f"n{i}") for i in range(1000)]
    start = replace(policy_mod.load(), block_evidence=None)
    real = accuracy_fit.fit_bands
    by_bands: set[int] = set()

    def bands_on_part_only(
        part: Any, template: policy_mod.Policy, fpr: float, review: float
    ) -> policy_mod.Policy:
        if len(part) == len(records):
            raise ValueError("not on all of them")
        fitted = real(part, template, fpr, review)
        by_bands.add(id(fitted))
        return fitted

    def bands_best(part: Any, policy: policy_mod.Policy, fpr: float) -> tuple[float, float]:
        return (1.0, 1.0) if id(policy) in by_bands else (0.5, 0.5)

    monkeypatch.setattr(accuracy_fit, "fit_bands", bands_on_part_only)
    monkeypatch.setattr(accuracy_fit, "judge", bands_best)
    fitted = accuracy_fit.fit(records, start, target_fpr=0.001, review_fpr=0.01)
    assert by_bands  # the bands won the inner split
    assert id(fitted) not in by_bands  # and the next best was fitted on all
    assert fitted.signals["sscd_cosine"].weight > 0


def test_fit_separates_synthetic_scores_and_bands_hold_the_rate() -> None:
    rng = np.random.default_rng(1)
    records = [_record("w", float(rng.uniform(0.6, 1.0)), f"p{i}") for i in range(200)]
    records += [_record(None, float(rng.uniform(-0.2, 0.5)), f"n{i}") for i in range(2000)]
    # The fit itself, without the shipped rule that a block needs one signal at full
    # evidence (that rule is tested below and in tests/screener/test_block_evidence.py).
    start = replace(policy_mod.load(), block_evidence=None)
    fitted = accuracy_fit.fit(records, start, target_fpr=0.001, review_fpr=0.01)
    assert fitted.signals["sscd_cosine"].weight > 0
    negatives = accuracy.rescore([r for r in records if r.truth is None], fitted)
    assert np.mean([r.decision == "block" for r in negatives]) <= 0.001
    assert np.mean([r.decision != "allow" for r in negatives]) <= 0.01
    positives = accuracy.rescore([r for r in records if r.truth], fitted)
    assert np.mean([r.decision == "block" for r in positives]) > 0.9
    assert policy_mod.loads(policy_mod.dumps(fitted)) == fitted
    # With the rule, a copy short of full evidence is reviewed instead: still never allowed.
    ruled = replace(fitted, block_evidence=policy_mod.load().block_evidence)
    held = accuracy.rescore([r for r in records if r.truth], ruled)
    assert np.mean([r.decision != "allow" for r in held]) > 0.9
    assert np.mean([r.decision == "block" for r in held]) < np.mean(
        [r.decision == "block" for r in positives]
    )


def _two_signal_record(
    truth: str | None, sscd: float | None, inliers: float | None, group: str
) -> accuracy.Record:
    values: dict[str, float | None] = {"sscd_cosine": sscd, "local_inliers": inliers}
    return _record(truth, 0.0, group, values, "composite")


def test_the_alone_blocks_fit_lets_one_signal_at_full_evidence_block() -> None:
    rng = np.random.default_rng(2)
    # Copies seen by one signal only (like a pasted work seen by local features alone),
    # unrelated images that are a little alike on both.
    records = [
        _two_signal_record("w", float(rng.uniform(0.7, 1.0)), None, f"p{i}") for i in range(100)
    ]
    records += [
        _two_signal_record("w", None, float(rng.integers(20, 80)), f"q{i}") for i in range(100)
    ]
    # Unrelated images alike on both signals at once: together they outscore any one
    # signal at full evidence under a plain logistic fusion.
    shared = np.linspace(0.0, 1.0, 2000) ** 8
    records += [
        _two_signal_record(None, 0.2 + 0.4 * float(u), 4 + 20 * float(u), f"n{i}")
        for i, u in enumerate(shared)
    ]
    template = policy_mod.load()
    plain = accuracy_fit.fit_ramps(records, template, 0.001, 0.01, max_weight=0.0)
    alone = accuracy_fit.fit_ramps(
        records, template, 0.001, 0.01, max_weight=accuracy_fit.ALONE_BLOCKS
    )
    assert alone.max_weight > 0
    for name in ("sscd_cosine", "local_inliers"):
        full = {name: alone.signals[name].hi}
        assert policy_mod.decide(fusion.fuse(full, alone), alone.bands).value == "block"
    negatives = accuracy.rescore([r for r in records if r.truth is None], alone)
    assert np.mean([r.decision == "block" for r in negatives]) <= 0.001

    # Ranked by log-odds (evidence past full counted) both order the copies first; what
    # differs is what the bands block: under the plain fusion one signal never suffices.
    # (Without the shipped rule that keypoints alone never block: half the copies here
    # are seen by keypoints only.)
    def blocked(policy: policy_mod.Policy) -> float:
        unruled = replace(policy, block_evidence=None)
        copies = accuracy.rescore([r for r in records if r.truth], unruled)
        return float(np.mean([r.decision == "block" for r in copies]))

    assert blocked(plain) < 0.5
    assert blocked(alone) >= 0.9
    assert accuracy_fit.recall_at(records, alone, 0.001) >= 0.9
    grouped = accuracy_fit.fit_ramps(records, template, 0.001, 0.01, groups=policy_mod.families())
    assert grouped.groups == policy_mod.families()


def test_the_inner_split_divides_either_half_of_any_run() -> None:
    records = [_record("w", 0.9, f"g{i}") for i in range(400)]
    for seed in range(4):
        for half in accuracy.split(records, seed):
            inner_fit, inner_judge = accuracy.split(half, accuracy_fit.INNER)
            assert len(inner_fit) > 50 and len(inner_judge) > 50


def test_split_keeps_groups_together() -> None:
    records = [_record(None, 0.1, f"g{i % 10}") for i in range(100)]
    first, second = accuracy.split(records, seed=0)
    assert {r.group for r in first}.isdisjoint({r.group for r in second})
    assert len(first) + len(second) == 100


def test_suite_build_skips_near_duplicates(image_folder: Path, tmp_path: Path) -> None:
    dup = image_folder.parent / "with-dup"
    dup.mkdir()
    base = samples.scene(1)
    base.save(dup / "a.png")
    base.resize((300, 225)).save(dup / "b.png")  # the same picture, smaller
    samples.scene(2).save(dup / "c.png")
    built = suite.build(dup, tmp_path / "s", works=1, distractors=1, seed=0, categories=["jpeg"])
    assert len(built.works) == 1
    with pytest.raises(ValueError, match="distinct usable images"):
        suite.build(dup, tmp_path / "t", works=2, distractors=1, seed=0, categories=["jpeg"])


def test_suite_load_reports_bad_truth_rows(image_folder: Path, tmp_path: Path) -> None:
    built_dir = tmp_path / "s"
    suite.build(image_folder, built_dir, works=2, distractors=2, seed=0, categories=["blur"])
    truth = built_dir / "truth.csv"
    loaded = suite.load(built_dir / "works", built_dir / "queries", truth)
    assert len(loaded.queries) == 2 * 1 + 2 * 2  # distractors also appear untouched
    truth.write_text("query_id,work_id\nnope,\n")
    with pytest.raises(ValueError, match="no query file named 'nope'"):
        suite.load(built_dir / "works", built_dir / "queries", truth)


@pytest.mark.slow
def test_the_benchmark_runs_end_to_end(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A template fitted with other models: the fitted policy must not inherit its stamp.
    template = tmp_path / "template.yaml"
    template.write_text(
        policy_mod.dumps(replace(policy_mod.load(), fitted_with={"pdq": "pdq/pdqhash-0.0.1"}))
    )
    monkeypatch.setenv("SCREENER_POLICY_PATH", str(template))
    out = tmp_path / "out"
    policy_file = tmp_path / "policy.yaml"
    bank = tmp_path / "generic"  # generic images for the background bank, none a work
    bank.mkdir()
    for k in range(24):
        samples.scene(500 + k, size=(160, 120)).save(bank / f"g{k}.png")
    report = accuracy_run.run(
        images=image_folder,
        works_dir=None,
        queries_dir=None,
        truth=None,
        works=4,
        distractors=6,
        categories=["jpeg", "crop_centre", "composite"],
        seed=3,
        target_fpr=0.01,
        review_fpr=0.05,
        out_dir=out,
        write_policy=policy_file,
        background=(bank,),
    )
    saved = json.loads((out / "accuracy.json").read_text())
    assert saved["config"]["background"] == {"folders": [str(bank)], "images": 24}
    assert saved["config"]["distractor_images"] is None  # drawn from --images
    assert saved["config"]["distractor_edits"] == "all"
    assert "sscd_norm_cosine" in saved["held_out"]["scores"]
    assert saved["config"]["queries"] == 4 * 3 + 6 * 4
    assert "fused" in saved["held_out"]["scores"]
    assert "sscd_cosine" in saved["held_out"]["scores"]
    assert set(saved["goals"]) >= {"copy_level_recall_at_target", "fused_vs_best_single"}
    for plot in ("roc.png", "recall_by_category.png"):
        with Image.open(out / plot) as image:
            assert image.width > 300
    policy = policy_mod.load(policy_file)
    assert policy.version.startswith("fit-")
    assert report["fitted_policy"]["version"] == policy.version
    # Stamped with the models that made the records, the keypoint extractor's too.
    assert policy.fitted_with == saved["config"]["models"]
    assert policy.fitted_with["local_inliers"].startswith("sift/opencv-")


def _sized_scenes(folder: Path, seeds: range, first_width: int) -> dict[tuple[int, int], str]:
    """Scenes of sizes unique to each file (below the suite's 384 px cap, so an untouched
    query keeps its source's size): a query's size names the file it was made from."""
    folder.mkdir()
    named = {}
    for k, seed in enumerate(seeds):
        size = (first_width + 6 * k, 150 + 4 * k)
        samples.scene(seed, size=size).save(folder / f"s{seed}.png")
        named[size] = f"s{seed}.png"
    return named


def _source_sizes(built: suite.Suite) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    def size(path: Path) -> tuple[int, int]:
        with Image.open(path) as image:
            return image.size

    works = {size(refs[0]) for refs in built.works.values()}
    untouched = {
        size(q.path) for q in built.queries if q.work_id is None and q.category == suite.UNTOUCHED
    }
    return works, untouched


def test_distractors_come_only_from_the_distractor_folders(tmp_path: Path) -> None:
    works_folder = tmp_path / "works-src"
    work_files = _sized_scenes(works_folder, range(10, 15), 200)
    other = tmp_path / "other"
    new_sizes = set(_sized_scenes(other, range(40, 43), 300))
    # Every works-folder image again, a little smaller, under another name: the copies of
    # the two drawn as works must be left out, the other three are fair distractors.
    copy_of: dict[str, tuple[int, int]] = {}
    for k, (size, name) in enumerate(sorted(work_files.items())):
        with Image.open(works_folder / name) as image:
            copy = image.resize((size[0] - 20 - k, size[1] - 15))
        copy.save(other / f"copy-{name}")
        copy_of[name] = copy.size

    def build(distractors: int) -> suite.Suite:
        return suite.build(
            works_folder,
            tmp_path / f"s{distractors}",
            works=2,
            distractors=distractors,
            seed=4,
            categories=["jpeg"],
            distractor_sources=[other],
        )

    built = build(6)
    works, untouched = _source_sizes(built)
    assert len(works) == 2 and works <= set(work_files)
    unused = [name for size, name in work_files.items() if size not in works]
    assert untouched == new_sizes | {copy_of[name] for name in unused}
    assert not untouched & set(work_files)  # no distractor from the works folder itself
    assert len([q for q in built.queries if q.work_id is None]) == 6 * 2
    # Asking for more than the folder's distinct images names the folder and its count.
    with pytest.raises(
        ValueError, match=rf"{re.escape(str(other))} has only 6 distinct usable images.*7 distr"
    ):
        build(7)


def test_bad_distractor_sources_are_clear_errors(image_folder: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    cases: list[tuple[str, dict[str, Any]]] = [
        (rf"{re.escape(str(empty))} holds no images", {"distractor_sources": [empty]}),
        (r"no such file or folder: .*missing", {"distractor_sources": [tmp_path / "missing"]}),
        (
            "distractor edits must be 0 to 2",
            {"categories": ["jpeg", "blur"], "distractor_edits": 3},
        ),
    ]
    for message, options in cases:
        with pytest.raises(ValueError, match=message):
            suite.build(image_folder, tmp_path / "s", works=1, distractors=1, seed=0, **options)
    runner = CliRunner()
    for extra in (["--distractor-edits", "2"], ["--distractor-images", str(image_folder)]):
        res = runner.invoke(bench_app, ["accuracy", "--records", "r.json.gz", *extra])
        assert res.exit_code == 2
        assert "need --images" in res.output


def test_distractor_edit_subsets_are_seeded_per_distractor() -> None:
    names = sorted(TRANSFORMS)
    drawn = [suite._some_edits(names, 5, np.random.default_rng([7, p])) for p in range(20)]
    assert all(len(d) == 5 == len(set(d)) and set(d) <= set(names) for d in drawn)
    assert all(d == sorted(d, key=names.index) for d in drawn)  # in the suite's order
    again = [suite._some_edits(names, 5, np.random.default_rng([7, p])) for p in range(20)]
    assert drawn == again
    assert len({tuple(d) for d in drawn}) > 10  # each distractor draws its own
    assert suite._some_edits(names, None, np.random.default_rng(0)) == names
    assert suite._some_edits(names, len(names), np.random.default_rng(0)) == names
    assert suite._some_edits(names, 0, np.random.default_rng(0)) == []


def test_a_suite_with_distractor_edits_keeps_untouched_and_is_seeded(
    image_folder: Path, tmp_path: Path
) -> None:
    edits = ["jpeg", "blur", "grayscale", "flip", "noise"]

    def build(out: str, count: int) -> dict[str, list[str]]:
        built = suite.build(
            image_folder,
            tmp_path / out,
            works=1,
            distractors=3,
            seed=5,
            categories=edits,
            distractor_edits=count,
        )
        per_group: dict[str, list[str]] = {}
        for q in built.queries:
            per_group.setdefault(q.group, []).append(q.category)
        return per_group

    first = build("a", 2)
    distractor_groups = [g for g in first if g.startswith("d")]
    assert len(distractor_groups) == 3
    for group, categories in first.items():
        if group in distractor_groups:
            assert categories[0] == suite.UNTOUCHED
            assert len(categories) == 1 + 2 and set(categories[1:]) <= set(edits)
        else:
            assert categories == edits  # works always get every edit
    assert build("b", 2) == first
    untouched_only = build("c", 0)
    assert all(untouched_only[g] == [suite.UNTOUCHED] for g in distractor_groups)


def test_a_suite_folder_is_named_with_works_dir_beside_the_works_count(
    image_folder: Path, tmp_path: Path
) -> None:
    """``--works`` is the count of works drawn from ``--images``; a ready suite's folder is
    ``--works-dir`` (one option name each, so neither shadows the other)."""
    built_dir = tmp_path / "s"
    suite.build(image_folder, built_dir, works=1, distractors=1, seed=0, categories=["blur"])
    runner = CliRunner()
    alone = runner.invoke(bench_app, ["accuracy", "--works-dir", str(built_dir / "works")])
    assert alone.exit_code == 2
    assert "--works-dir needs --queries and --truth" in " ".join(alone.output.split())
    both = runner.invoke(
        bench_app,
        ["accuracy", "--works-dir", str(built_dir / "works"), "--images", str(image_folder)],
    )
    assert both.exit_code == 2 and "give either --images" in " ".join(both.output.split())


def test_where_look_alikes_reach_the_cap_the_fit_blocks_on_a_log_odds_floor() -> None:
    rng = np.random.default_rng(3)

    # Same-brand look-alikes: SSCD and pHash at full evidence, nothing else close; the
    # fused probability of every one of them is at its cap.
    def lookalike(i: int) -> accuracy.Record:
        values: dict[str, float | None] = {
            "sscd_cosine": float(rng.uniform(0.85, 0.94)),
            "sscd_region_cosine": float(rng.uniform(0.8, 0.88)),
            "phash_hamming": float(rng.integers(4, 7)),
        }
        return _record(None, 0.0, f"l{i}", values, "clean")

    def copy(i: int) -> accuracy.Record:
        values: dict[str, float | None] = {
            "sscd_cosine": float(rng.uniform(0.95, 1.0)),
            "sscd_region_cosine": float(rng.uniform(0.9, 1.0)),
            "phash_hamming": float(rng.integers(0, 3)),
            "pdq_hamming": float(rng.integers(0, 20)),
            "local_inliers": float(rng.integers(40, 200)),
        }
        return _record("w", 0.0, f"c{i}", values, "clean")

    records = [copy(i) for i in range(100)] + [lookalike(i) for i in range(1000)]
    template = policy_mod.load()
    assert all(fusion.fuse(r.values, template) >= fusion.TOP_SCORE for r in records)
    fitted = accuracy_fit.fit_bands(records, template, 0.001, 0.01)
    assert fitted.bands.block <= fusion.TOP_SCORE  # a band that a copy can reach
    assert fitted.block_evidence is not None and fitted.block_evidence.min_log_odds is not None
    scored = accuracy.rescore(records, fitted)
    assert np.mean([r.decision == "block" for r in scored if r.truth is None]) <= 0.001
    assert np.mean([r.decision == "block" for r in scored if r.truth]) > 0.9
    # Ranked by the log-odds, the copies clear every look-alike; by the capped
    # probability none does.
    assert accuracy_fit.recall_at(records, fitted, 0.001) > 0.9
    assert lodo_report.strict_recall(scored, 0.001)["recall"] > 0.9
    capped = [replace(r, log_odds=None) for r in scored]
    assert lodo_report.strict_recall(capped, 0.001)["recall"] == 0.0


def test_the_fit_sets_the_review_floor_at_the_review_rate() -> None:
    """Unrelated images spread from one signal at full evidence to several: the band alone
    reviews every one of them; the fitted floor reviews fewer than 1 % and still holds the
    copies, which bring more."""
    rng = np.random.default_rng(5)

    def unrelated(i: int) -> accuracy.Record:
        values: dict[str, float | None] = {
            "sscd_cosine": float(rng.uniform(0.78, 0.95)),
            "phash_hamming": float(rng.integers(4, 12)),
            "local_inliers": float(rng.integers(0, 22)),
        }
        return _record(None, 0.0, f"u{i}", values, "clean")

    def copy(i: int) -> accuracy.Record:
        values: dict[str, float | None] = {
            "sscd_cosine": float(rng.uniform(0.95, 1.0)),
            "phash_hamming": float(rng.integers(0, 3)),
            "pdq_hamming": float(rng.integers(0, 20)),
            "local_inliers": float(rng.integers(40, 200)),
        }
        return _record("w", 0.0, f"c{i}", values, "clean")

    records = [copy(i) for i in range(100)] + [unrelated(i) for i in range(1000)]
    template = replace(policy_mod.load(), review_min_log_odds=0.0)
    band_alone = accuracy.rescore(records, replace(template, review_min_log_odds=None))
    assert np.mean([r.decision != "allow" for r in band_alone if r.truth is None]) > 0.5
    fitted = accuracy_fit.fit_bands(records, template, 0.001, 0.01)
    assert fitted.review_min_log_odds is not None and fitted.review_min_log_odds > 0.0
    scored = accuracy.rescore(records, fitted)
    assert np.mean([r.decision != "allow" for r in scored if r.truth is None]) < 0.01
    assert np.mean([r.decision != "allow" for r in scored if r.truth]) > 0.9
    # A template without a floor gets none: the band alone decides, as before.
    unfloored = replace(template, review_min_log_odds=None)
    assert accuracy_fit.fit_bands(records, unfloored, 0.001, 0.01).review_min_log_odds is None
