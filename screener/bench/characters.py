"""``screener bench characters``: is a registered character found in a new pose or style?

Builds the character suite (`screener.bench.characters_suite`) from the sources asked for,
registers every character through the screener's own registration, checks every query
with the shipped policy, and reports per category (new_pose, other_style, light_copy;
lookalike, other_character, photo):

- **the service's own decisions**: the share of each category flagged (review or block),
  counting a positive only when the flagged work is its own character;
- **recall at 1 % and 0.1 % FPR with the right character named**: the fused score of the
  shipped policy, and, leave-one-source-out, of a policy fitted (`accuracy_fit.fit`) on the
  other sources' records and judged on the held-out source's, thresholds set on the
  held-out negatives. "pooled" joins every held-out source's rescored records, so that
  its thresholds rest on all the negatives.

Records are saved, so that ``--records`` reports again without screening.
"""

from __future__ import annotations

import gzip
import json
import math
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from screener.bench import accuracy, accuracy_fit
from screener.bench import characters_data as data
from screener.bench import characters_suite as csuite
from screener.bench.common import machine, write_json
from screener.cli import progress_bar
from screener.core import policy as policy_mod
from screener.core.errors import ScreenerError
from screener.core.policy import Policy, image_evidence
from screener.core.settings import Settings
from screener.matching.pipeline import Screener

FPRS = (0.01, 0.001)
POOLED = "pooled"
ROUTE_EVIDENCE = "character_margin"
# Also reported: the route on the colour-weighted likeness (screener/matching/characters.py).
OTHER_ROUTES = ("character_likeness",)
ROUTE_RATE = 0.01  # look-alikes, and unrelated images, the route may flag on the fit sources
UNRELATED = (csuite.OTHER_CHARACTER, csuite.PHOTO)


def source_of(record: accuracy.Record) -> str:
    """Every record's group is ``source/character``."""
    return record.group.split("/", 1)[0]


def load_sources(names: Sequence[str], roots: Sequence[Path]) -> dict[str, list[data.Character]]:
    """The characters of each named source (`characters_data.SOURCES`)."""
    unknown = sorted(set(names) - set(data.SOURCES))
    if unknown:
        raise ValueError(f"unknown source(s) {unknown}; known: {sorted(data.SOURCES)}")
    return {name: data.SOURCES[name](roots) for name in dict.fromkeys(names)}


def run(
    *,
    catalogue: Mapping[str, Sequence[data.Character]],
    photos: Sequence[Path],
    roots: Sequence[Path] = (),
    seed: int,
    plan: csuite.Plan,
    out_dir: Path,
    command: str = "",
    keep_suite: Path | None = None,
    records_file: Path | None = None,
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    if records_file is not None:
        with gzip.open(records_file, "rt", encoding="utf-8") as handle:
            saved = json.load(handle)
        records = [
            accuracy.Record(**{**r, "candidates": tuple((w, v) for w, v in r["candidates"])})
            for r in saved["records"]
        ]
        config = {**saved["config"], "records": str(records_file)}
        template = policy_mod.load(Settings().policy_path)
        return report(records, template, config, out_dir, command)
    if len(catalogue) < 2:
        raise ValueError("leave-one-source-out needs at least two sources")
    pictures = csuite.photo_files(photos) if photos else []
    with (
        tempfile.TemporaryDirectory(prefix="screener-characters-") as scratch,
        progress_bar(Console(stderr=True)) as bar,
    ):
        where = keep_suite or Path(scratch) / "suite"
        task = bar.add_task("building suite", total=plan.characters * len(catalogue))
        built = csuite.build(
            catalogue,
            pictures,
            where,
            seed=seed,
            plan=plan,
            progress=lambda n: bar.advance(task, n),
        )
        settings = Settings(data_dir=Path(scratch) / "data")
        template = policy_mod.load(settings.policy_path)
        with Screener(settings, policy=template) as screener:
            task = bar.add_task("registering", total=len(built.suite.works))
            registration = _register(screener, built.suite.works, lambda: bar.advance(task, 1))
            queries = [q for q in built.suite.queries if q.work_id not in registration["refused"]]
            task = bar.add_task("screening", total=len(queries))
            records = []
            for query in queries:
                records.append(accuracy.check(screener, query))
                bar.advance(task, 1)
            models = screener.model_specs
            signals = list(screener.signals.names)
    config = {
        "sources": sorted(catalogue),
        "roots": [str(r) for r in roots],
        "photos": [str(p) for p in photos],
        "photo_files": len(pictures),
        "seed": seed,
        "plan": asdict(plan),
        "works": len(built.suite.works),
        "queries": len(records),
        "registration": registration,
        "short_sources": built.skipped,
        "signals": signals,
        "models": models,
    }
    with gzip.open(out_dir / "records.json.gz", "wt", encoding="utf-8") as handle:
        json.dump({"config": config, "records": [asdict(r) for r in records]}, handle)
    return report(records, template, config, out_dir, command)


def _register(screener: Screener, works: dict[str, list[Path]], step: Any) -> dict[str, Any]:
    """Register every character as a rights holder would; a refusal is reported, and the
    character's queries are left out (none of its references is screened against)."""
    refused: dict[str, str] = {}
    held: dict[str, int] = {}
    for work_id, paths in works.items():
        try:
            result = screener.registry.register(work_id, paths, title=work_id, owner="benchmark")
        except ScreenerError as exc:
            refused[work_id] = str(exc)
        else:
            if result.held:
                held[work_id] = len(result.held)
        step()
    screener.registry.save()
    return {"refused": refused, "held_references": held}


def named_recall(records: Sequence[accuracy.Record], fpr: float) -> dict[str, Any]:
    """Per category: positives found above the ``fpr`` threshold of these negatives *with
    their own character on top*; negatives' rate at that threshold."""
    negatives = np.array([r.fused for r in records if r.truth is None])
    threshold = accuracy.threshold_at(negatives, fpr)
    out: dict[str, Any] = {
        "threshold": threshold if math.isfinite(threshold) else None,
        "negatives": int(negatives.size),
        "categories": {},
    }
    for category in sorted({r.category for r in records}):
        mine = [r for r in records if r.category == category]
        if mine[0].truth is not None:
            hits = [r.top_work == r.truth and r.fused >= threshold for r in mine]
        else:
            hits = [r.fused >= threshold for r in mine]
        out["categories"][category] = {"rate": float(np.mean(hits)), "n": len(mine)}
    return out


def decisions(records: Sequence[accuracy.Record]) -> dict[str, Any]:
    """Per category, the share flagged (review or block; a positive only when its own
    character is the top match) and blocked."""
    out: dict[str, Any] = {}
    for category in sorted({r.category for r in records}):
        mine = [r for r in records if r.category == category]

        def named(r: accuracy.Record) -> bool:
            return r.truth is None or r.top_work == r.truth

        flagged = [r.decision != "allow" and named(r) for r in mine]
        blocked = [r.decision == "block" and named(r) for r in mine]
        out[category] = {
            "flagged": float(np.mean(flagged)),
            "blocked": float(np.mean(blocked)),
            "n": len(mine),
        }
    return out


def _fit(records: Sequence[accuracy.Record], template: Policy) -> tuple[Policy, str | None]:
    try:
        return accuracy_fit.fit(records, template), None
    except ValueError as exc:  # no signal separates anything on these records
        return template, str(exc)


def folds(
    records: Sequence[accuracy.Record],
) -> Iterator[tuple[str, list[accuracy.Record], list[accuracy.Record]]]:
    """(held-out source, records to fit on, records to report on), one per source: the
    fit never sees a record of the source it is judged on."""
    for held in sorted({source_of(r) for r in records}):
        yield (
            held,
            [r for r in records if source_of(r) != held],
            [r for r in records if source_of(r) == held],
        )


def route_value(record: accuracy.Record, evidence: str = ROUTE_EVIDENCE) -> float:
    """What the character route reads: the true work's evidence for a positive; for a
    negative the highest of any candidate work's (the route flags it if any reaches)."""
    if record.truth is not None:
        value = record.values.get(evidence)
        return float(value) if value is not None else -math.inf
    found = [v.get(evidence) for _, v in record.candidates]
    return max((float(v) for v in found if v is not None), default=-math.inf)


def fit_route(
    records: Sequence[accuracy.Record], evidence: str = ROUTE_EVIDENCE, rate: float = ROUTE_RATE
) -> policy_mod.CharacterReview | None:
    """The lowest threshold at which the route flags at most ``rate`` of the look-alikes and
    at most ``rate`` of the unrelated images (other characters, photographs) of these
    records; None where no record carries the evidence."""
    thresholds = []
    for kind in ((csuite.LOOKALIKE,), UNRELATED):
        values = np.array([route_value(r, evidence) for r in records if r.category in kind])
        values = values[np.isfinite(values)]
        if values.size:
            thresholds.append(accuracy.threshold_at(values, rate))
    if not thresholds:
        return None
    threshold = max(thresholds)
    if not math.isfinite(threshold):
        return None
    return policy_mod.CharacterReview(evidence, round(float(threshold) + 1e-6, 6))


def route_report(
    records: Sequence[accuracy.Record], template: Policy, evidence: str = ROUTE_EVIDENCE
) -> dict[str, Any]:
    """Leave one source out, the route fitted on the other sources (`fit_route`) and judged
    on the held-out one: the route alone (positives with their own character), and the
    service's decisions with the route added to the policy; then the route fitted on every
    source (what a shipped policy would carry)."""
    out: dict[str, Any] = {"evidence": evidence, "rate": ROUTE_RATE, "folds": {}}
    pooled: list[accuracy.Record] = []
    for held, fit_on, mine in folds(records):
        route = fit_route(fit_on, evidence)
        with_route = replace(template, character_review=route)
        rescored = accuracy.rescore(mine, with_route)
        pooled.extend(rescored)
        alone = {}
        for category in sorted({r.category for r in mine}):
            values = [route_value(r, evidence) for r in mine if r.category == category]
            hit = [route is not None and v >= route.threshold for v in values]
            alone[category] = {"rate": float(np.mean(hit)), "n": len(values)}
        out["folds"][held] = {
            "threshold": None if route is None else route.threshold,
            "route_alone": alone,
            "decisions_with_route": decisions(rescored),
            "decisions_without": decisions(accuracy.rescore(mine, template)),
        }
    out["folds"][POOLED] = {"decisions_with_route": decisions(pooled)}
    every = fit_route(records, evidence)
    out["fitted_on_all"] = None if every is None else every.threshold
    # The policy's own route (fitted on another run, e.g. a development seed): the
    # service's decisions as it would make them on these records, with and without it.
    if template.character_review is not None:
        out["policy_route"] = {
            "threshold": template.character_review.threshold,
            "decisions_with_route": decisions(accuracy.rescore(records, template)),
            "decisions_without": decisions(
                accuracy.rescore(records, replace(template, character_review=None))
            ),
        }
    return out


def report(
    records: list[accuracy.Record],
    template: Policy,
    config: dict[str, Any],
    out_dir: Path,
    command: str,
) -> dict[str, Any]:
    sources = sorted({source_of(r) for r in records})
    shipped: dict[str, Any] = {
        held: {
            "decisions": decisions(mine),
            "at_fpr": {str(f): named_recall(mine, f) for f in FPRS},
        }
        for held, mine in [
            *((s, [r for r in records if source_of(r) == s]) for s in sources),
            (POOLED, records),
        ]
    }
    loso: dict[str, Any] = {}
    pooled: list[accuracy.Record] = []
    for held, fit_on, mine in folds(records):
        fitted, failure = _fit(fit_on, template)
        rescored = accuracy.rescore(mine, fitted)
        pooled.extend(rescored)
        loso[held] = {
            "fitted_on": sorted({source_of(r) for r in fit_on}),
            "fit_failed": failure,
            "policy": fitted.version,
            "decisions": decisions(rescored),
            "at_fpr": {str(f): named_recall(rescored, f) for f in FPRS},
        }
    loso[POOLED] = {
        "decisions": decisions(pooled),
        "at_fpr": {str(f): named_recall(pooled, f) for f in FPRS},
    }
    names = [n for n in image_evidence() if any(r.values.get(n) is not None for r in records)]
    result: dict[str, Any] = {
        "benchmark": "characters",
        "command": command,
        "machine": machine(),
        "config": config,
        "policy": template.version,
        "shipped_policy": shipped,
        "leave_one_source_out": loso,
        # Each signal alone (scored against the true work; no naming), for diagnosis.
        "signals_alone": {
            k: v["at_fpr"]
            for k, v in accuracy.metrics(records, [*names, accuracy.FUSED])["scores"].items()
        },
        "character_route": route_report(records, template),
        "other_routes": {e: route_report(records, template, e) for e in OTHER_ROUTES},
        "seconds_per_check_p50": float(np.median([r.seconds for r in records]))
        if records
        else None,
    }
    write_json(out_dir / "characters.json", result)
    (out_dir / "characters.md").write_text(markdown(result))
    return result


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def markdown(result: dict[str, Any]) -> str:
    """The headline tables: shipped decisions and named recall, then leave-one-source-out."""
    positives = list(csuite.POSITIVE)
    negatives = list(csuite.NEGATIVE)
    lines = [
        "# Character likeness",
        "",
        f"Policy `{result['policy']}`; {result['config']['works']} characters registered, "
        f"{result['config']['queries']} queries; seed {result['config']['seed']}.",
        "",
        "## Shipped policy, all sources",
        "",
        "| | " + " | ".join(positives) + " | " + " | ".join(negatives) + " |",
        "|---" * (1 + len(positives) + len(negatives)) + "|",
    ]
    every = result["shipped_policy"][POOLED]
    lines.append(_row("decisions: flagged", every["decisions"], positives + negatives, "flagged"))
    for fpr in FPRS:
        lines.append(
            _row(
                f"named recall at {fpr:.1%} FPR",
                every["at_fpr"][str(fpr)]["categories"],
                positives + negatives,
                "rate",
            )
        )
    lines += [
        "",
        "Counts: "
        + ", ".join(
            f"{c} {every['decisions'][c]['n']}"
            for c in positives + negatives
            if c in every["decisions"]
        )
        + ".",
        "",
        "## Leave one source out (fitted on the others, thresholds on the held-out negatives)",
        "",
        "| held out | "
        + " | ".join(f"{c} @1 %" for c in positives)
        + " | "
        + " | ".join(f"{c} @0.1 %" for c in positives)
        + " | lookalikes flagged | negatives |",
        "|---" * (3 + 2 * len(positives)) + "|",
    ]
    for held, entry in result["leave_one_source_out"].items():
        one = entry["at_fpr"]["0.01"]["categories"]
        tenth = entry["at_fpr"]["0.001"]["categories"]
        flagged = entry.get("decisions", {}).get(csuite.LOOKALIKE, {}).get("flagged")
        cells = [_pct(one.get(c, {}).get("rate")) for c in positives]
        cells += [_pct(tenth.get(c, {}).get("rate")) for c in positives]
        lines.append(
            f"| {held} | "
            + " | ".join(cells)
            + f" | {_pct(flagged)} | {entry['at_fpr']['0.01']['negatives']} |"
        )
    lines += _route_markdown(result.get("character_route"), positives)
    for route in result.get("other_routes", {}).values():
        lines += _route_markdown({**route, "policy_route": None}, positives)
    lines.append("")
    return "\n".join(lines)


def _route_markdown(route: dict[str, Any] | None, positives: Sequence[str]) -> list[str]:
    if not route:
        return []
    negatives = [csuite.LOOKALIKE, *UNRELATED]
    lines = [
        "",
        f"## Character route (`{route['evidence']}`), leave one source out",
        "",
        f"Threshold fitted on the other sources: at most {route['rate']:.0%} of their "
        "look-alikes and of their unrelated images flagged. The service's decisions with the "
        f"route (flagged: review or block, own character on top). Fitted on every source: "
        f"{route['fitted_on_all']}.",
        "",
        "| held out | threshold | "
        + " | ".join(f"{c} (route alone)" for c in positives)
        + " | "
        + " | ".join(f"{c} flagged" for c in [*positives, *negatives])
        + " | "
        + " | ".join(f"{c} flagged without" for c in positives)
        + " |",
        "|---" * (2 + 3 * len(positives) + len(negatives)) + "|",
    ]
    for held, entry in route["folds"].items():
        alone = entry.get("route_alone", {})
        cells = [str(entry.get("threshold", "-"))]
        cells += [_pct(alone.get(c, {}).get("rate")) for c in positives]
        cells += [
            _pct(entry["decisions_with_route"].get(c, {}).get("flagged"))
            for c in [*positives, *negatives]
        ]
        cells += [
            _pct(entry.get("decisions_without", {}).get(c, {}).get("flagged")) for c in positives
        ]
        lines.append(f"| {held} | " + " | ".join(cells) + " |")
    shipped = route.get("policy_route")
    if shipped:
        every = [*positives, *negatives]
        lines += [
            "",
            f"The policy's own route (threshold {shipped['threshold']}), all sources: flagged "
            "with the route / without it.",
            "",
            "| | " + " | ".join(every) + " |",
            "|---" * (1 + len(every)) + "|",
            _row("with the route", shipped["decisions_with_route"], every, "flagged"),
            _row("without", shipped["decisions_without"], every, "flagged"),
        ]
    return lines


def _row(label: str, table: dict[str, Any], categories: Sequence[str], key: str) -> str:
    return f"| {label} | " + " | ".join(_pct(table.get(c, {}).get(key)) for c in categories) + " |"
