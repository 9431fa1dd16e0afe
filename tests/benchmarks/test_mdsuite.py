"""The multi-domain suite and its leave-one-domain-out report, on images made in code."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from screener.bench import accuracy, domains, lodo_report, mdsuite
from screener.bench.categories import CATEGORIES, MAX_SIDE, MIN_SIDE, query_side, sized
from screener.bench.cli import app as bench_app
from screener.bench.transforms import flat
from screener.core import policy as policy_mod
from screener.core import samples
from screener.core.settings import Settings

WORKS, DISTRACTORS, EDITS = 2, 4, 2


def _tiles() -> list[Image.Image]:
    return [samples.scene(100 + i, size=(300, 240)) for i in range(4)]


@pytest.mark.parametrize("name", list(CATEGORIES))
def test_every_category_is_an_rgb_query_of_generator_size_and_seeded(name: str) -> None:
    work = samples.drawing(5, transparent=True)
    side = query_side(np.random.default_rng(9))
    out = CATEGORIES[name](work, np.random.default_rng(1), side, _tiles())
    again = CATEGORIES[name](work, np.random.default_rng(1), side, _tiles())
    assert out.mode == "RGB"
    assert max(out.size) == (side // 2 if name == "resize_half" else side)
    assert np.array_equal(np.asarray(out), np.asarray(again)), "edits must be seeded"


def test_the_issue_names_every_category() -> None:
    assert len(CATEGORIES) == 24
    sides = {query_side(np.random.default_rng(i)) for i in range(200)}
    assert min(sides) >= MIN_SIDE and max(sides) <= MAX_SIDE


def _thumb(image: Image.Image) -> np.ndarray:
    return np.asarray(flat(image).convert("L").resize((16, 16)), dtype=np.float64)


def test_a_collage_holds_the_work_once_and_three_of_the_others() -> None:
    work = samples.drawing(7)
    others = _tiles()
    side = 400
    out = CATEGORIES["collage_2x2"](work, np.random.default_rng(3), side, others)
    tile = side // 2
    pieces = [
        out.crop(((i % 2) * tile, (i // 2) * tile, (i % 2 + 1) * tile, (i // 2 + 1) * tile))
        for i in range(4)
    ]
    candidates = [work, *others]
    nearest = [
        int(np.argmin([np.abs(_thumb(p) - _thumb(sized(c, tile))).mean() for c in candidates]))
        for p in pieces
    ]
    assert nearest.count(0) == 1, "the work fills exactly one tile"
    assert len(set(nearest)) == 4, "the other three are three different distractors"
    with pytest.raises(ValueError, match="three distractor"):
        CATEGORIES["collage_2x2"](work, np.random.default_rng(3), side, others[:2])


@pytest.fixture(scope="module")
def domain_folders(tmp_path_factory: pytest.TempPathFactory) -> list[domains.Domain]:
    root = tmp_path_factory.mktemp("domains")
    made = []
    for d, (name, kind) in enumerate((("flat", "drawing"), ("photo", "scene"))):
        for family in ("one", "two"):
            folder = root / name / family
            folder.mkdir(parents=True)
            for i in range(5):
                seed = 1000 * d + 100 * (family == "two") + i
                art = samples.drawing(seed) if kind == "drawing" else samples.scene(seed)
                art.save(folder / f"img{i}.png")
        made.append(domains.parse(f"{name}={root / name}"))
    return made


@pytest.fixture(scope="module")
def built(domain_folders: list[domains.Domain], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("suite")
    mdsuite.build(
        domain_folders, out, works=WORKS, distractors=DISTRACTORS, seed=4, distractor_edits=EDITS
    )
    return out


def _truth(folder: Path) -> list[dict[str, str]]:
    with (folder / "truth.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_work_gets_every_category_and_the_truth_rows_say_so(built: Path) -> None:
    rows = _truth(built)
    works = sorted(p.name for p in (built / "works").iterdir())
    assert works == [f"{d}.w{n:04d}" for d in ("flat", "photo") for n in range(WORKS)]
    for work in works:
        mine = [r for r in rows if r["work_id"] == work]
        assert sorted(r["category"] for r in mine) == sorted(CATEGORIES)
        assert all(r["kind"] == "copy" and r["domain"] == work.split(".")[0] for r in mine)
    unrelated = [r for r in rows if not r["work_id"]]
    groups = {r["query_id"].rsplit("-", 1)[0] for r in unrelated}
    assert len(groups) == 2 * DISTRACTORS
    assert {r["kind"] for r in unrelated} <= {"lookalike", "distractor"}
    assert len(unrelated) == len(groups) * (1 + EDITS)
    for row in rows:
        assert (built / "queries" / f"{row['query_id']}.png").is_file()
    for row in unrelated:  # a look-alike comes from a family that holds a registered work
        assert (row["kind"] == "lookalike") == (".l" in row["query_id"])


def test_collage_tiles_of_a_copy_come_from_its_domains_distractors(built: Path) -> None:
    rows = _truth(built)
    for work in sorted(p.name for p in (built / "works").iterdir()):
        domain = work.split(".")[0]
        collage = Image.open(built / "queries" / f"{work}-collage_2x2.png").convert("RGB")
        tile = collage.width // 2
        reference = Image.open(built / "works" / work / "reference.png")
        distractors = [
            Image.open(built / "queries" / f"{r['query_id']}.png")
            for r in rows
            if r["domain"] == domain and not r["work_id"] and r["category"] == "untouched"
        ]
        others = [
            Image.open(built / "works" / w / "reference.png")
            for w in (p.name for p in (built / "works").iterdir())
            if w != work
        ]
        candidates = [reference, *distractors, *others]
        for i in range(4):
            box = ((i % 2) * tile, (i // 2) * tile, (i % 2 + 1) * tile, (i // 2 + 1) * tile)
            piece = _thumb(collage.crop(box))
            errors = [np.abs(piece - _thumb(sized(c, tile))).mean() for c in candidates]
            best = int(np.argmin(errors))
            assert best <= len(distractors), f"{work}: a collage tile is another registered work"


def test_the_suite_is_deterministic_for_a_seed(
    domain_folders: list[domains.Domain], built: Path, tmp_path: Path
) -> None:
    again = tmp_path / "again"
    mdsuite.build(
        domain_folders, again, works=WORKS, distractors=DISTRACTORS, seed=4, distractor_edits=EDITS
    )
    assert (again / "truth.csv").read_text() == (built / "truth.csv").read_text()
    for row in _truth(built):
        name = f"{row['query_id']}.png"
        first = np.asarray(Image.open(built / "queries" / name))
        second = np.asarray(Image.open(again / "queries" / name))
        assert np.array_equal(first, second), name


def test_a_missing_domain_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no such folder.*apt-get"):
        domains.parse(f"icons={tmp_path / 'nope'}")
    with pytest.raises(ValueError, match="lower-case"):
        domains.parse(f"Bad-Name={tmp_path}")
    with pytest.raises(ValueError, match="NAME=FOLDER"):
        domains.parse("icons")
    result = CliRunner().invoke(
        bench_app, ["accuracy", "--domain", f"icons={tmp_path / 'nope'}", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "no such folder" in result.output
    mixed = CliRunner().invoke(
        bench_app, ["accuracy", "--domain", f"a={tmp_path}", "--images", str(tmp_path)]
    )
    assert mixed.exit_code == 2
    assert "build or read their own suites" in mixed.output


def test_logos_share_a_style_within_a_brand_and_differ_in_words(tmp_path: Path) -> None:
    fonts = sorted(Path("/usr/share/fonts").rglob("*.ttf"))
    if not fonts:
        pytest.skip("no TrueType font on this machine")
    found = domains.draw_logos(fonts[:3], tmp_path, seed=2, count=8)
    assert len(found) == 8
    assert len({s.family for s in found}) == 2
    pixels = [np.asarray(Image.open(s.path)) for s in found]
    for i in range(len(pixels)):
        for j in range(i + 1, len(pixels)):
            assert not np.array_equal(pixels[i], pixels[j])


# leave-one-domain-out -------------------------------------------------------------------


def _record(domain: str, kind: str, n: int, score: float, category: str) -> accuracy.Record:
    group = f"{domain}.{kind}{n:04d}"
    truth = group if kind == "w" else None
    values: dict[str, float | None] = {"sscd_cosine": score, "pdq_hamming": None}
    work = truth or f"{domain}.w0000"
    return accuracy.Record(
        f"{group}-{category}", category, group, truth, values, 0.0, work, "allow", 0.01,
        ((work, values),),
    )  # fmt: skip


def _records(seed: int, doms: tuple[str, ...]) -> list[accuracy.Record]:
    rng = np.random.default_rng(seed)
    out = []
    for domain in doms:
        for n in range(30):
            for category in ("clean", "blur"):
                out.append(_record(domain, "w", n, float(rng.uniform(0.5, 1.0)), category))
        for n in range(60):
            kind = "l" if n % 3 == 0 else "d"
            out.append(_record(domain, kind, n, float(rng.uniform(-0.2, 0.45)), "untouched"))
    return out


def test_lodo_never_fits_on_the_held_out_domain() -> None:
    doms = ("alpha", "beta", "gamma")
    fit_records, report_records = _records(1, doms), _records(2, doms)
    for held in doms:
        rest, mine = lodo_report.split_by_domain(fit_records, held)
        assert rest and mine
        assert all(mdsuite.domain_of(r.group) != held for r in rest)
        assert all(mdsuite.domain_of(r.group) == held for r in mine)
        assert len(rest) + len(mine) == len(fit_records)
    template = policy_mod.load(Settings().policy_path)
    rep = lodo_report.report(
        fit_records, report_records, template, target_fpr=0.001, review_fpr=0.01,
        config={}, command="test",
    )  # fmt: skip
    for held in doms:
        entry = rep["held_out"][held]
        assert entry["fitted_on"] == sorted(set(doms) - {held})
        assert entry["counts"] == {"positives": 60, "negatives": 60}
        assert entry["recall_right_work"]["0.001"]["negatives"] == 60
        assert entry["decisions_fitted_policy"]["lookalike"]["count"] == 20
    assert rep["held_out"]["all"]["recall_right_work"]["0.001"]["recall"] == 1.0
    each = rep["held_out"]["each"]["recall_right_work"]["0.001"]
    assert each["recall"] == 1.0 and each["negatives"] == 180
    assert each["copies"] == {"blur": 90, "clean": 90}
    assert "| **overall** |" in lodo_report.markdown(rep)
    assert set(rep["held_out"]["each"]["fused_vs_best_single"]) == {"blur", "clean"}
    assert "each domain at its own threshold, pooled" in lodo_report.markdown(rep)


def _held(copies: dict[str, int], recall: dict[str, dict[str, float]]) -> dict[str, object]:
    return {"recall_right_work": {"0.001": {"copies": copies}}, "recall_by_score": recall}


def test_fused_against_the_best_signal_pools_each_domain_by_its_copies() -> None:
    # Domain a: 10 blur copies, fused finds 0.9, pdq 1.0; domain b: 30 copies, fused 0.6,
    # pdq never measured there (finds none), sscd 0.8 there and 0.0 in a.
    a = _held({"blur": 10}, {"fused": {"blur": 0.9}, "pdq_hamming": {"blur": 1.0},
                             "sscd_cosine": {"blur": 0.0}})  # fmt: skip
    b = _held({"blur": 30}, {"fused": {"blur": 0.6}, "sscd_cosine": {"blur": 0.8}})
    entry = lodo_report.fused_vs_best_each([a, b], 0.001)["blur"]
    assert entry["fused"] == pytest.approx((9 + 18) / 40)
    assert entry["best_single"] == "sscd_cosine"
    assert entry["best_single_recall"] == pytest.approx(24 / 40)
    assert entry["fused_at_least_best"] is True
    worse = lodo_report.fused_vs_best_each(
        [a, _held({"blur": 30}, {"fused": {"blur": 0.0}})], 0.001
    )
    assert worse["blur"]["best_single"] == "pdq_hamming"
    assert worse["blur"]["fused_at_least_best"] is False


def test_saved_records_refit_from_the_command_line(tmp_path: Path) -> None:
    from screener.bench import lodo

    doms = ("alpha", "beta")
    lodo.save(lodo.records_path(tmp_path, lodo.FIT), _records(3, doms), {"fit_seed": 3})
    lodo.save(lodo.records_path(tmp_path, lodo.REPORT), _records(4, doms), {"report_seed": 4})
    out = tmp_path / "out"
    result = CliRunner().invoke(
        bench_app, ["accuracy", "--lodo-records", str(tmp_path), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "| **overall** |" in result.output
    assert (out / "lodo.json").is_file() and (out / "lodo.md").is_file()
    shipped = policy_mod.load(out / "policy-all-domains.yaml")
    assert shipped.version.startswith("fit-")
    missing = CliRunner().invoke(
        bench_app, ["accuracy", "--lodo-records", str(out / "nothing"), "--out", str(out)]
    )
    assert missing.exit_code == 2
    assert "no saved records" in missing.output
