"""Stored cohort levels (`screener.matching.cohorts`): kept up to date as works are
registered, given references and removed, they equal the levels computed afresh; a check
reads them without screening its candidates against the registry; a crash between a
catalog change and their update, or a row made under another setting, leaves only
something to compute."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, ImageFilter

from screener import Screener, Settings
from screener.core import policy as policy_mod
from screener.core.samples import drawing, scene
from screener.matching import cohorts
from tests.images import png

pytestmark = [pytest.mark.slow, pytest.mark.sscd]
SIGNALS = ["phash", "pdq", "sscd"]


def _policy(k: int) -> policy_mod.Policy:
    default = policy_mod.load(None)
    return replace(default, matching=replace(default.matching, cohort_k=k))


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", signals=SIGNALS, background_bank="none")


def _works() -> dict[str, Image.Image]:
    hero = drawing(41)
    return {
        "hero": hero,
        # Near-duplicates of the hero: each is the other's closest work.
        "twin": hero.rotate(8, fillcolor="white").filter(ImageFilter.GaussianBlur(1)),
        "cousin": hero.rotate(-5, fillcolor="white"),
        "scene": scene(42),
        "sketch": drawing(43),
    }


def _assert_stored_levels_are_fresh(sc: Screener, k: int) -> None:
    """Every registered work has a current row, and its levels equal those computed
    afresh (the indexes searched and the others scored exactly, as before the rows)."""
    rows = sc.cohorts.rows()
    refs = sc.cohorts.references()
    assert set(rows) == set(refs)
    for work_id, ids in refs.items():
        assert rows[work_id].refs == ids
        stored = cohorts.level(rows[work_id].entries, k)
        assert stored == pytest.approx(sc._cohort_of(work_id, k), abs=1e-6), work_id


@pytest.mark.parametrize("k", [1, 2])
def test_levels_kept_up_to_date_equal_levels_computed_afresh(tmp_path: Path, k: int) -> None:
    works = _works()
    with Screener(_settings(tmp_path), policy=_policy(k)) as sc:
        for work_id, image in works.items():
            sc.registry.register(work_id, [png(image)])
        _assert_stored_levels_are_fresh(sc, k)
        hero_before = cohorts.level(sc.cohorts.rows(["hero"])["hero"].entries, k)
        # The cousin is the hero's closest work: its removal recomputes the rows naming it.
        assert "cousin" in sc.cohorts.rows(["hero"])["hero"].names()
        sc.registry.remove("cousin")
        assert "cousin" not in sc.cohorts.rows()
        _assert_stored_levels_are_fresh(sc, k)
        hero_after = cohorts.level(sc.cohorts.rows(["hero"])["hero"].entries, k)
        assert hero_after["sscd_cosine"] <= hero_before["sscd_cosine"]
        # A new reference of an existing work, close to the sketch: merged into its row.
        sc.registry.register(
            "scene", [png(drawing(43).rotate(4, fillcolor="white"))], must_exist=True
        )
        _assert_stored_levels_are_fresh(sc, k)
        # ... and removing that reference again.
        added = max(r.id for r in sc.catalog.references("scene"))
        sc.registry.remove_reference("scene", added)
        _assert_stored_levels_are_fresh(sc, k)


def test_a_check_after_an_unrelated_registration_computes_no_levels(tmp_path: Path) -> None:
    works = _works()
    with Screener(_settings(tmp_path), policy=_policy(1)) as sc:
        for work_id, image in works.items():
            sc.registry.register(work_id, [png(image)])
        query = png(works["hero"].filter(ImageFilter.GaussianBlur(2)))
        before = sc.check(query)
        assert len(before.matches) + len(before.near_misses) >= 2
        computed = sc.cohort_computed
        sc.check(query)
        assert sc.cohort_computed == computed  # nothing new: every candidate's row is read
        # An unrelated registration computes the new work's levels and merges it into
        # its neighbours' rows: one work computed afresh, not every one.
        sc.registry.register("unrelated", [png(scene(99))])
        assert sc.cohort_computed == computed + 1
        after = sc.check(query)
        assert sc.cohort_computed == computed + 1  # the check computed none
        assert after.matches[0].work_id == before.matches[0].work_id
        _assert_stored_levels_are_fresh(sc, 1)


def test_a_crash_before_the_rows_are_written_leaves_only_something_to_compute(
    tmp_path: Path,
) -> None:
    works = _works()
    settings = _settings(tmp_path)
    with Screener(settings, policy=_policy(1)) as sc:
        for work_id in ("hero", "scene", "sketch"):
            sc.registry.register(work_id, [png(works[work_id])])
        rows, mark = sc.cohorts.rows(), sc.cohorts.mark()
        sc.registry.register("twin", [png(works["twin"])])
        assert "twin" in sc.cohorts.rows(["hero"])["hero"].names()
        # As if the process died after the catalog's commit and before the rows' one:
        # the rows and the mark as they were, the twin in the catalog and the indexes.
        sc.cohorts.write(list(rows.values()), drop=["twin"], mark=mark)
        assert "twin" not in sc.cohorts.rows(["hero"])["hero"].names()
    with Screener(settings, policy=_policy(1)) as sc:  # the start replays the change
        assert "twin" in sc.cohorts.rows(["hero"])["hero"].names()
        _assert_stored_levels_are_fresh(sc, 1)


def test_a_stale_row_is_computed_afresh_when_a_check_needs_it(tmp_path: Path) -> None:
    works = _works()
    with Screener(_settings(tmp_path), policy=_policy(1)) as sc:
        for work_id in ("hero", "twin", "scene"):
            sc.registry.register(work_id, [png(works[work_id])])
        row = sc.cohorts.rows(["hero"])["hero"]
        # A row written under another setting (another k, floor or model spec), with
        # levels that are wrong now.
        wrong = {name: [(0.0, "scene")] for name in row.entries}
        sc.cohorts.write([cohorts.Row("hero", "another setting", row.refs, wrong)])
        computed = sc.cohort_computed
        levels = sc._cohort_levels(["hero", "twin"])
        assert sc.cohort_computed == computed + 1  # the hero's, not the twin's
        assert levels["hero"] == pytest.approx(cohorts.level(row.entries, 1), abs=1e-6)
        assert sc.cohorts.rows(["hero"])["hero"].setting == row.setting  # stored again
        # A policy with another k makes every row stale; each is computed once.
        sc.policy = _policy(2)
        sc._cohort_levels(["hero", "twin", "scene"])
        assert sc.cohort_computed == computed + 4
        sc._cohort_levels(["hero", "twin", "scene"])
        assert sc.cohort_computed == computed + 4
        _assert_stored_levels_are_fresh(sc, 2)


def test_the_works_scored_for_a_cohort_row_are_the_nearest_rank_by_rank() -> None:
    """A registration scores a bounded number of other works, the nearest in every
    fingerprint's neighbour list first; the work itself and unknown ids never count."""
    from screener.matching.scoring import _nearest_works

    owners = {i: (f"w{i // 10}", i, "whole") for i in range(100)}
    # Two fingerprints' lists, nearest first: the work's own (w0) leads both.
    lists = [[1, 35, 47, 99, 12], [2, 61, 73, 88, 999]]
    assert _nearest_works(lists, owners, "w0", 2) == ["w3", "w6"]
    assert _nearest_works(lists, owners, "w0", 3) == ["w3", "w4", "w6"]
    assert _nearest_works(lists, owners, "w0", 100) == ["w1", "w3", "w4", "w6", "w7", "w8", "w9"]
    assert _nearest_works([], owners, "w0", 5) == []
