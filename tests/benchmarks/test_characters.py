"""The character suite and ``screener bench characters`` on code-drawn creatures only:
no Debian package is needed."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from screener.bench import accuracy, characters, creature_art
from screener.bench import characters_data as data
from screener.bench import characters_suite as csuite
from screener.bench.cli import app as bench_app
from screener.bench.suite import Query
from screener.core import policy as policy_mod
from screener.core import samples

PLAN = csuite.Plan(characters=3, new_poses=2, styles=1, lookalikes=2, others=2, photos=2)


def _two_sources() -> dict[str, list[data.Character]]:
    """The drawn creatures as two sources, each with every species: "north" and "south"."""
    every = data.creatures(count=16, poses=6)
    out: dict[str, list[data.Character]] = {"north": [], "south": []}
    for i, c in enumerate(every):
        source = "north" if i < len(every) // 2 else "south"
        out[source].append(dataclasses.replace(c, source=source))
    return out


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for i in range(8):
        samples.scene(100 + i).save(folder / f"scene{i}.png")
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, photos: Path) -> csuite.Built:
    out = tmp_path_factory.mktemp("suite")
    return csuite.build(_two_sources(), csuite.photo_files([photos]), out, seed=5, plan=PLAN)


def test_a_creature_is_the_same_for_the_same_pose_and_changes_with_it() -> None:
    look = creature_art.look_of("cat", 3)
    a = np.asarray(creature_art.draw_creature(look, 2))
    assert np.array_equal(a, np.asarray(creature_art.draw_creature(look, 2)))
    assert not np.array_equal(a, np.asarray(creature_art.draw_creature(look, 5)))
    assert creature_art.look_of("cat", 3) != creature_art.look_of("cat", 4)


def test_the_truth_names_each_positive_s_character_and_no_negative(built: csuite.Built) -> None:
    suite = built.suite
    assert len(suite.works) == 2 * PLAN.characters
    for paths in suite.works.values():
        assert PLAN.references[0] <= len(paths) <= PLAN.references[1]
        assert all(p.is_file() for p in paths)
    categories = {q.category for q in suite.queries}
    assert categories == set(csuite.POSITIVE) | set(csuite.NEGATIVE)
    for q in suite.queries:
        assert (q.work_id is not None) == (q.category in csuite.POSITIVE)
        if q.work_id is not None:
            assert q.work_id in suite.works
            assert built.source_of[q.id] == built.source_of[q.work_id]
        with Image.open(q.path) as image:
            assert min(image.size) >= 16
    with (suite.queries[0].path.parent.parent / "truth.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["query_id"] for r in rows] == [q.id for q in suite.queries]
    assert {r["work_id"] for r in rows if r["work_id"]} == set(suite.works)


def test_new_poses_are_not_references_and_negatives_are_not_registered(
    built: csuite.Built,
) -> None:
    by_work = {w: set(built.arts[w]) for w in built.suite.works}
    registered = {name.split("-pose")[0] for arts in by_work.values() for name in arts}
    for q in built.suite.queries:
        made_from = set(built.arts[q.id])
        if q.category == csuite.NEW_POSE:
            assert q.work_id is not None
            assert not made_from & by_work[q.work_id]
        elif q.category == csuite.LIGHT_COPY:
            assert q.work_id is not None
            assert made_from <= by_work[q.work_id]
        elif q.category in (csuite.LOOKALIKE, csuite.OTHER_CHARACTER):
            assert {name.split("-pose")[0] for name in made_from}.isdisjoint(registered)


def test_lookalikes_share_a_kin_with_a_registered_character(built: csuite.Built) -> None:
    kin = {c.id: c.kin for cs in _two_sources().values() for c in cs}
    registered = {(built.source_of[w], kin[w]) for w in built.suite.works}

    def family(q: Query) -> tuple[str, str]:  # a negative's source and kin
        return built.source_of[q.id], kin[q.group.split("/")[1]]

    lookalikes = [q for q in built.suite.queries if q.category == csuite.LOOKALIKE]
    others = [q for q in built.suite.queries if q.category == csuite.OTHER_CHARACTER]
    assert lookalikes
    assert others
    assert all(family(q) in registered for q in lookalikes)
    assert all(family(q) not in registered for q in others)


def test_photos_are_backgrounds_or_negatives_never_both(built: csuite.Built) -> None:
    assert set(built.background_photos).isdisjoint(built.negative_photos)
    used = {a for q in built.suite.queries if q.category == csuite.PHOTO for a in built.arts[q.id]}
    assert used and used <= set(built.negative_photos)


def _digests(suite: csuite.Built) -> dict[str, str]:
    files = [p for ps in suite.suite.works.values() for p in ps] + [
        q.path for q in suite.suite.queries
    ]
    return {p.name + p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_the_same_seed_builds_the_same_suite_and_another_seed_another(
    built: csuite.Built, photos: Path, tmp_path: Path
) -> None:
    files = csuite.photo_files([photos])
    again = csuite.build(_two_sources(), files, tmp_path / "a", seed=5, plan=PLAN)
    assert _digests(again) == _digests(built)
    other = csuite.build(_two_sources(), files, tmp_path / "b", seed=6, plan=PLAN)
    assert _digests(other) != _digests(built)


def test_no_picture_or_character_serves_two_sources(built: csuite.Built) -> None:
    """Leave-one-source-out is honest only if a held-out source shares nothing with the
    sources fitted on: no frame, character or photograph is used by two of them."""
    arts: dict[str, set[str]] = {}
    characters_of: dict[str, set[str]] = {}
    for item in [*built.suite.works, *(q.id for q in built.suite.queries)]:
        arts.setdefault(built.source_of[item], set()).update(built.arts[item])
    for q in built.suite.queries:
        assert q.group.split("/")[0] == built.source_of[q.id]
        characters_of.setdefault(built.source_of[q.id], set()).add(q.group.split("/")[1])
    assert set(arts) == {"north", "south"}
    assert arts["north"].isdisjoint(arts["south"])
    names = [{c for c in cs if not c.startswith("photo")} for cs in characters_of.values()]
    assert names[0].isdisjoint(names[1])


def _record(qid: str, group: str, truth: str | None, fused: float) -> accuracy.Record:
    category = "neg" if truth is None else "pos"
    return accuracy.Record(
        qid, category, group, truth, {}, fused, truth, "allow", 0.0, ((truth or "w", {}),)
    )


def test_a_fold_never_fits_on_the_source_it_reports() -> None:
    records = [
        _record(f"q{i}", f"{s}/x{i}", "w" if i % 2 else None, 0.1 * i)
        for i, s in enumerate(["a", "b", "c"] * 4)
    ]
    seen = []
    for held, fit_on, report_on in characters.folds(records):
        seen.append(held)
        assert {characters.source_of(r) for r in fit_on} == {"a", "b", "c"} - {held}
        assert {characters.source_of(r) for r in report_on} == {held}
        assert len(fit_on) + len(report_on) == len(records)
    assert seen == ["a", "b", "c"]


def test_named_recall_counts_a_positive_only_under_its_own_character() -> None:
    negatives = [_record(f"n{i}", "a/n", None, i / 200) for i in range(100)]  # top 0.495
    right = _record("p1", "a/p", "w1", 0.9)
    wrong = dataclasses.replace(_record("p2", "a/p", "w2", 0.9), top_work="w1")
    low = _record("p3", "a/p", "w3", 0.3)
    result = characters.named_recall([*negatives, right, wrong, low], 0.01)
    assert result["categories"]["pos"]["rate"] == pytest.approx(1 / 3)
    assert result["categories"]["neg"]["rate"] == pytest.approx(0.01)
    assert 0.49 < result["threshold"] <= 0.495


def _margin(qid: str, source: str, category: str, truth: str | None, m: float) -> accuracy.Record:
    values: dict[str, float | None] = {"character_margin": m}
    return accuracy.Record(
        qid, category, f"{source}/c", truth, values, 0.0, truth, "allow", 0.0, (("w", values),)
    )


def test_the_route_is_fitted_on_the_look_alikes_and_the_unrelated_of_the_fit_sources() -> None:
    """At most 1 % of each kind may pass: with 200 look-alikes two reach the threshold, with
    50 unrelated images none (the larger of the two thresholds wins)."""
    lookalikes = [_margin(f"l{i}", "a", "lookalike", None, i / 1000) for i in range(200)]
    unrelated = [_margin(f"u{i}", "a", "photo", None, i / 500) for i in range(50)]
    route = characters.fit_route([*lookalikes, *unrelated])
    assert route is not None and route.evidence == "character_margin"
    assert 0.197 < route.threshold <= 0.198  # the 3rd highest look-alike is let through...
    unrelated.append(_margin("u-top", "a", "other_character", None, 0.5))
    route = characters.fit_route([*lookalikes, *unrelated])
    assert route is not None and 0.5 <= route.threshold < 0.5001  # ... unless an unrelated is
    assert characters.fit_route([_record("p", "a/p", "w", 0.9)]) is None  # nothing to fit on


def test_the_route_report_judges_each_source_on_a_threshold_fitted_on_the_others() -> None:
    records = [
        *(
            _margin(f"{s}l{i}", s, "lookalike", None, 0.1 if s == "a" else 0.01)
            for s in "ab"
            for i in range(10)
        ),
        *(_margin(f"{s}p", s, "new_pose", "w", 0.05) for s in "ab"),
    ]
    report = characters.route_report(records, policy_mod.load())
    a, b = report["folds"]["a"], report["folds"]["b"]
    assert a["threshold"] == pytest.approx(0.01, abs=1e-5)  # fitted on b's look-alikes
    assert b["threshold"] == pytest.approx(0.1, abs=1e-5)  # fitted on a's
    assert a["route_alone"]["new_pose"]["rate"] == 1.0  # 0.05 passes b's threshold...
    assert a["decisions_with_route"]["lookalike"]["flagged"] == 1.0  # ... and a's look-alikes
    assert b["route_alone"]["new_pose"]["rate"] == 0.0
    assert b["decisions_with_route"]["lookalike"]["flagged"] == 0.0
    assert all(d["blocked"] == 0.0 for d in a["decisions_with_route"].values())


def test_the_bench_runs_end_to_end_on_drawn_creatures(tmp_path: Path, photos: Path) -> None:
    plan = csuite.Plan(characters=2, new_poses=1, styles=1, lookalikes=1, others=1, photos=1)
    result = characters.run(
        catalogue=_two_sources(),
        photos=[photos],
        seed=3,
        plan=plan,
        out_dir=tmp_path / "out",
        keep_suite=tmp_path / "suite",
    )
    assert set(result["leave_one_source_out"]) == {"north", "south", characters.POOLED}
    assert result["leave_one_source_out"]["north"]["fitted_on"] == ["south"]
    light = result["shipped_policy"][characters.POOLED]["decisions"][csuite.LIGHT_COPY]
    assert light["n"] == 4
    assert light["flagged"] == 1.0, "a lightly edited reference must be caught and named"
    assert (tmp_path / "out" / "characters.md").read_text().startswith("# Character likeness")
    again = characters.run(
        catalogue={},
        photos=[],
        seed=3,
        plan=plan,
        out_dir=tmp_path / "again",
        records_file=tmp_path / "out" / "records.json.gz",
    )
    assert again["shipped_policy"] == result["shipped_policy"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "wesnoth", "--source", "creatures"], "apt-get download wesnoth-1.16-data"),
        (["--source", "supertux", "--source", "creatures"], "apt-get download supertux-data"),
        (["--source", "nosuch", "--source", "creatures"], "unknown source(s) ['nosuch']"),
        (["--source", "creatures"], "at least two sources"),
    ],
)
def test_bad_sources_are_clear_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(
        bench_app, ["characters", *args, "--root", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
