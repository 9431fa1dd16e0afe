"""``screener bench prompts``: recall of the prompt screening on a seeded evasion suite,
its benign match rate, and the latency of one prompt check at catalog scale.

Recall: the suite's works (see ``screener.bench.prompt_suite``) are registered in a fresh
SQLite catalog with their title, aliases and related terms, and every prompt is checked
through the same path as ``screener prompt``; an evasive prompt counts as caught when its
work is among the matches, a benign prompt as a false match when anything matches.

Latency: ``--works`` synthetic works of ``--terms`` terms each (Latin, Chinese and
katakana names and related terms) are written to another catalog; the prompt automaton
loads them once, then each check is timed (with and without the term-log query that keeps
it in step with the catalog), against the per-check path it replaced (every work's
keywords loaded and matched one by one) on a few prompts in the same run. No threshold is
asserted: the numbers are printed and written down.
"""

from __future__ import annotations

import random
import re
import statistics
import tempfile
import time
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from screener.bench.common import machine, write_json
from screener.bench.prompt_suite import CATEGORIES, Suite, generate
from screener.core import policy as policy_mod
from screener.core.policy import PromptPolicy
from screener.store.catalog import Catalog, RelatedTermRow, TermLogRow, WorkRow
from screener.store.prompt_terms import PromptScreen, match

_HAN = "光明星云火山风雷龙虎猫狗天地海月花草金银铜铁青红白黑紫蓝王侠神魔仙剑刀圣灵兽鸟鱼"
_KATA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモラリルレロ"
_LATIN = "bcdfghjklmnprstvz"
_VOWELS = "aeiou"


def recall(suite: Suite, policy: PromptPolicy, directory: Path) -> dict[str, Any]:
    """Register the suite's works and check every prompt; recall per category."""
    catalog = Catalog(f"sqlite:///{directory / 'suite.db'}")
    try:
        for work in suite.works:
            catalog.register(
                work.work_id,
                title=work.title,
                owner="bench",
                aliases=work.aliases,
                related_terms=work.related,
                references=(),
            )
        screen = PromptScreen(catalog)
        rows: dict[str, list[bool]] = {c: [] for c in CATEGORIES}
        misses: list[dict[str, Any]] = []
        for item in suite.prompts:
            result = screen.check(item.prompt, policy)
            found = {m.work_id for m in result.matches}
            ok = not found if item.work_id is None else item.work_id in found
            rows[item.category].append(ok)
            if not ok:
                misses.append(
                    {
                        "category": item.category,
                        "prompt": item.prompt,
                        "work_id": item.work_id,
                        "found": sorted(found),
                    }
                )
    finally:
        catalog.close()
    table = {
        c: {"prompts": len(v), "rate": round(sum(v) / len(v), 4) if v else None}
        for c, v in rows.items()
    }
    benign = table["benign"]
    if benign["rate"] is not None:
        benign["matched"] = round(1 - benign["rate"], 4)
    return {"categories": table, "misses": misses, "prompts": len(suite.prompts)}


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_LATIN) + rng.choice(_VOWELS) for _ in range(syllables))


def _synthetic(rng: random.Random, index: int, terms: int) -> tuple[str, list[str], list[str]]:
    """A title, aliases and related terms: about half Latin, a third Chinese, the rest
    katakana; a quarter of the terms related."""
    names: list[str] = []
    related: list[str] = []
    for t in range(terms):
        kind = rng.random()
        if kind < 0.5:
            term = f"{_word(rng, rng.randint(2, 4))} {_word(rng, 2)}".title()
        elif kind < 0.8:
            term = "".join(rng.choice(_HAN) for _ in range(rng.randint(3, 4)))
        else:
            term = "".join(rng.choice(_KATA) for _ in range(rng.randint(3, 6)))
        (related if t % 4 == 3 else names).append(f"{term}{index}" if t == 0 else term)
    return names[0], names[1:], related


def _fill(catalog: Catalog, works: int, terms: int, seed: int) -> None:
    """Write the synthetic works in one transaction (as `works import` would, minus the
    images, which prompt screening never reads)."""
    rng = random.Random(seed)
    made = [_synthetic(rng, i, terms) for i in range(works)]
    with Session(catalog.engine) as session, session.begin():
        for i, (title, aliases, _) in enumerate(made):
            session.add(WorkRow(id=f"w{i:06d}", title=title, owner="bench", aliases=aliases))
        session.flush()  # the works before the rows that refer to them
        for i, (_, _, related) in enumerate(made):
            session.add_all(RelatedTermRow(work_id=f"w{i:06d}", term=t) for t in related)
            session.add(TermLogRow(work_id=f"w{i:06d}", op="set"))


def _old_normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _old_keyword_matches(
    prompt: str, keywords: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """The matcher this benchmark compares with: a regular expression per keyword."""
    text = _old_normalise(prompt)
    found: dict[str, list[str]] = {}
    for work_id, words in keywords.items():
        hits = []
        for word in words:
            key = _old_normalise(word)
            if len(key) < 2:
                continue
            edge = [r"\b" if c.isascii() and c.isalnum() else "" for c in (key[0], key[-1])]
            if re.search(edge[0] + re.escape(key) + edge[1], text):
                hits.append(word)
        if hits:
            found[work_id] = hits
    return found


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 4),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 4),
        "n": len(ordered),
    }


def latency(
    prompts: Sequence[str],
    policy: PromptPolicy,
    directory: Path,
    *,
    works: int,
    terms: int,
    checks: int,
    old_checks: int,
    seed: int,
) -> dict[str, Any]:
    catalog = Catalog(f"sqlite:///{directory / 'scale.db'}")
    try:
        _fill(catalog, works, terms, seed)
        screen = PromptScreen(catalog)
        start = time.perf_counter()
        screen.refresh()
        load_s = time.perf_counter() - start
        order = [prompts[i % len(prompts)] for i in range(checks)]
        timed_check: list[float] = []
        timed_match: list[float] = []
        for turn, text in enumerate(order):
            # Alternate which goes first, so neither always finds the caches warm.
            for which in (turn % 2, 1 - turn % 2):
                start = time.perf_counter()
                if which:
                    screen.check(text, policy)
                else:
                    match(screen.index, text, policy)
                (timed_check if which else timed_match).append(time.perf_counter() - start)
        timed_old = []
        for text in order[:old_checks]:
            start = time.perf_counter()
            _old_keyword_matches(text, catalog.keywords())
            timed_old.append(time.perf_counter() - start)
        # One work added, then removed: the automaton follows the term log, no full rebuild.
        builds = screen.index.builds
        catalog.register(
            "w-new", title="Zanthorix Vale", owner="bench", aliases=["赞索里克斯"], references=()
        )
        start = time.perf_counter()
        screen.refresh()
        add_s = time.perf_counter() - start
        found = "w-new" in {m.work_id for m in screen.check("zanthorix vale", policy).matches}
        catalog.remove_work("w-new")
        start = time.perf_counter()
        screen.refresh()
        remove_s = time.perf_counter() - start
        gone = not screen.check("zanthorix vale", policy).matches
    finally:
        catalog.close()
    check, fast, old = (
        _percentiles(timed_check),
        _percentiles(timed_match),
        _percentiles(timed_old),
    )
    return {
        "works": works,
        "terms_per_work": terms,
        "keys": len(screen.index),
        "load_s": round(load_s, 2),
        "check": check,
        "match_only": fast,
        "old_per_check_path": old,
        "speedup_p50": round(old["p50_ms"] / check["p50_ms"], 1) if check["p50_ms"] else None,
        "incremental": {
            "add_refresh_ms": round(add_s * 1000, 2),
            "remove_refresh_ms": round(remove_s * 1000, 2),
            "full_builds_during_updates": screen.index.builds - builds,
            "added_work_matched": found,
            "removed_work_gone": gone,
        },
    }


def run(
    seed: int,
    out_dir: Path,
    *,
    works: int,
    terms: int,
    checks: int,
    old_checks: int,
    policy_path: Path | None = None,
) -> dict[str, Any]:
    policy = policy_mod.load(policy_path).prompt
    suite = generate(seed)
    with tempfile.TemporaryDirectory(prefix="bench-prompts-") as scratch:
        directory = Path(scratch)
        found = recall(suite, policy, directory)
        timing = (
            latency(
                [p.prompt for p in suite.prompts],
                policy,
                directory,
                works=works,
                terms=terms,
                checks=checks,
                old_checks=old_checks,
                seed=seed,
            )
            if works
            else None
        )
    report = {
        "seed": seed,
        "half": suite.half,
        "policy": policy_mod.dumps(policy_mod.load(policy_path)).split("\n", 1)[0],
        "recall": found,
        "latency": timing,
        "machine": machine(),
    }
    write_json(out_dir / f"prompts-seed{seed}.json", report)
    (out_dir / f"prompts-seed{seed}.md").write_text(markdown(report), "utf-8")
    return report


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Prompt screening, seed {report['seed']} ({report['half']} works)",
        "",
        "| category | prompts | recall (benign: not matched) |",
        "|---|---:|---:|",
    ]
    for name, row in report["recall"]["categories"].items():
        lines.append(f"| {name} | {row['prompts']} | {row['rate']} |")
    benign = report["recall"]["categories"]["benign"]
    lines += ["", f"Benign prompts matched: {benign.get('matched')}", ""]
    timing = report["latency"]
    if timing:
        lines += [
            f"Latency, {timing['works']} works x {timing['terms_per_work']} terms "
            f"({timing['keys']} keys, loaded in {timing['load_s']} s):",
            "",
            "| path | p50 ms | p99 ms | n |",
            "|---|---:|---:|---:|",
        ]
        for name in ("check", "match_only", "old_per_check_path"):
            row = timing[name]
            lines.append(f"| {name} | {row['p50_ms']} | {row['p99_ms']} | {row['n']} |")
        lines += [
            "",
            f"p50 speed-up over the old per-check path: {timing['speedup_p50']}x; "
            f"incremental: {timing['incremental']}",
        ]
    return "\n".join(lines) + "\n"
