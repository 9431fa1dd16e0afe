"""`screener bench prompts`: the suite's shape and a small run end to end."""

from __future__ import annotations

import json
from pathlib import Path

from screener.bench import prompts
from screener.bench.prompt_suite import CATEGORIES, generate


def test_suites_are_large_seeded_and_split_by_work() -> None:
    tuning, held_out = generate(1), generate(2)
    assert len(tuning.prompts) >= 300 and len(held_out.prompts) >= 300
    assert generate(2) == held_out and generate(4).prompts != held_out.prompts
    assert not {w.work_id for w in tuning.works} & {w.work_id for w in held_out.works}
    assert {p.category for p in held_out.prompts} == set(CATEGORIES)
    named = {w.work_id for w in held_out.works}
    assert all((p.work_id is None) == (p.category == "benign") for p in held_out.prompts)
    assert {p.work_id for p in held_out.prompts} - {None} <= named


def test_a_small_run_writes_the_table(tmp_path: Path) -> None:
    report = prompts.run(4, tmp_path, works=40, terms=20, checks=30, old_checks=2)
    table = report["recall"]["categories"]
    assert set(table) == set(CATEGORIES)
    assert table["separator"]["rate"] > 0.5  # a broken matcher scores about 0
    timing = report["latency"]
    assert timing["works"] == 40 and timing["check"]["n"] == 30
    assert timing["incremental"]["added_work_matched"]
    assert timing["incremental"]["removed_work_gone"]
    assert timing["incremental"]["full_builds_during_updates"] == 0
    written = json.loads((tmp_path / "prompts-seed4.json").read_text())
    assert written["seed"] == 4
    assert "| separator |" in (tmp_path / "prompts-seed4.md").read_text()
