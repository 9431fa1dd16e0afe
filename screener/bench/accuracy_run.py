"""Runs the accuracy benchmark end to end: suite, pipeline, fit, report, plots, policy."""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from screener.bench import accuracy, accuracy_fit, plots, suite
from screener.bench.common import machine, write_json
from screener.bench.transforms import COPY_LEVEL
from screener.cli import images_in, progress_bar
from screener.core import policy as policy_mod
from screener.core.errors import ScreenerError
from screener.core.policy import image_evidence
from screener.core.settings import Settings
from screener.matching.pipeline import Screener


def run(
    *,
    images: Path | None,
    works_dir: Path | None,
    queries_dir: Path | None,
    truth: Path | None,
    works: int,
    distractors: int,
    categories: Sequence[str] | None,
    seed: int,
    target_fpr: float,
    review_fpr: float,
    out_dir: Path,
    write_policy: Path | None,
    regions: bool = True,
    command: str = "",
    records_file: Path | None = None,
    background: Sequence[Path] = (),
    distractor_images: Sequence[Path] = (),
    distractor_edits: int | None = None,
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    if records_file is not None:
        return refit(records_file, target_fpr, review_fpr, seed, out_dir, write_policy, command)
    with (
        tempfile.TemporaryDirectory(prefix="screener-accuracy-") as scratch,
        progress_bar(Console(stderr=True)) as bar,
    ):
        if images is not None:
            task = bar.add_task("building suite", total=works + distractors)
            the_suite = suite.build(
                images,
                Path(scratch) / "suite",
                works=works,
                distractors=distractors,
                seed=seed,
                categories=categories,
                distractor_sources=distractor_images,
                distractor_edits=distractor_edits,
                progress=lambda n: bar.advance(task, n),
            )
        else:
            assert works_dir
            assert queries_dir
            assert truth
            the_suite = suite.load(works_dir, queries_dir, truth)
        settings = Settings(data_dir=Path(scratch) / "data", regions=regions)
        template = policy_mod.load(settings.policy_path)
        with Screener(settings, policy=template) as screener:
            bank = _background(screener, background, bar) if background else None
            if bank is None and screener.background is not None:  # the packaged bank
                bank = {"source": screener.background.source, "images": screener.background.count}
            task = bar.add_task("screening", total=len(the_suite.queries))
            records = accuracy.evaluate(screener, the_suite, lambda n: bar.advance(task, n))
            signals_used = list(screener.signals.names)
            models = screener.model_specs
    # Where the distractors came from (None: from "source") and how many edits each got
    # besides its untouched form; both None for a loaded suite.
    drawn: dict[str, Any] = {"distractor_images": None, "distractor_edits": None}
    if images is not None:
        drawn = {
            "distractor_images": [str(p) for p in distractor_images] or None,
            "distractor_edits": "all" if distractor_edits is None else distractor_edits,
        }
    config = {
        "source": str(images)
        if images
        else {"works": str(works_dir), "queries": str(queries_dir), "truth": str(truth)},
        "works": len(the_suite.works),
        "queries": len(the_suite.queries),
        **drawn,
        "seed": seed,
        "target_fpr": target_fpr,
        "review_fpr": review_fpr,
        "regions": regions,
        "signals": signals_used,
        "models": models,
        "copy_level_categories": sorted(COPY_LEVEL),
        "background": bank,
    }
    with gzip.open(out_dir / "records.json.gz", "wt", encoding="utf-8") as handle:
        json.dump({"config": config, "records": [asdict(r) for r in records]}, handle)
    return _report(
        records, template, config, target_fpr, review_fpr, seed, out_dir, write_policy, command
    )


def _background(screener: Screener, folders: Sequence[Path], bar: Any) -> dict[str, Any]:
    """Build the screener's background bank from ``folders`` (generic images, which must
    share nothing with the suite's source) so that records carry ``sscd_norm_cosine``.
    Built before the suite's works are registered, so none is left out as a copy."""
    files = sorted(images_in(folders))
    task = bar.add_task("background bank", total=len(files))
    try:
        report = screener.build_background(
            files, ", ".join(str(f) for f in folders), lambda n: bar.advance(task, n)
        )
    except ScreenerError as exc:  # no SSCD, too few usable images
        raise ValueError(f"--background: {exc}") from None
    return {"folders": [str(f) for f in folders], "images": report.count}


def refit(
    records_file: Path,
    target_fpr: float,
    review_fpr: float,
    seed: int,
    out_dir: Path,
    write_policy: Path | None,
    command: str,
) -> dict[str, Any]:
    """Fit and report again from saved records (no screening): minutes become seconds."""
    with gzip.open(records_file, "rt", encoding="utf-8") as handle:
        saved = json.load(handle)
    records = [
        accuracy.Record(**{**r, "candidates": tuple((w, v) for w, v in r["candidates"])})
        for r in saved["records"]
    ]
    config = {
        **saved.get("config", {}),
        "records": str(records_file),
        "target_fpr": target_fpr,
        "review_fpr": review_fpr,
        "seed": seed,
    }
    return _report(
        records,
        policy_mod.load(Settings().policy_path),
        config,
        target_fpr,
        review_fpr,
        seed,
        out_dir,
        write_policy,
        command,
    )


def _report(
    records: list[accuracy.Record],
    template: policy_mod.Policy,
    config: dict[str, Any],
    target_fpr: float,
    review_fpr: float,
    seed: int,
    out_dir: Path,
    write_policy: Path | None,
    command: str,
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    fit_half, held_out = accuracy.split(records, seed)
    fitted = accuracy_fit.fit(fit_half, template, target_fpr=target_fpr, review_fpr=review_fpr)
    # Fitted on these records: stamped with the models that made them, not the template's.
    fitted = replace(fitted, fitted_with=dict(config.get("models") or {}))
    names = [n for n in image_evidence() if any(r.values.get(n) is not None for r in records)]
    scored_names = [*names, accuracy.FUSED]
    report: dict[str, Any] = {
        "benchmark": "accuracy",
        "command": command,
        "machine": machine(),
        "config": config,
        "baseline_policy": template.version,
        "fitted_policy": fitted.to_dict(),
        # The honest numbers: the fitted policy on source images it was not fitted on.
        "held_out": accuracy.metrics(accuracy.rescore(held_out, fitted), scored_names),
        "held_out_default_policy": accuracy.metrics(
            accuracy.rescore(held_out, template), [accuracy.FUSED]
        ),
        "fit_half": accuracy.metrics(accuracy.rescore(fit_half, fitted), [accuracy.FUSED]),
    }
    report["goals"] = goals(report["held_out"], target_fpr)
    write_json(out_dir / "accuracy.json", report)
    (out_dir / "policy.yaml").write_text(policy_mod.dumps(fitted))
    if write_policy is not None:
        write_policy.write_text(policy_mod.dumps(fitted))
    scores = report["held_out"]["scores"]
    plots.roc(scores, out_dir / "roc.png", "ROC on held-out sources (fitted fusion)")
    plots.recall_bars(
        scores,
        scored_names,
        str(target_fpr),
        out_dir / "recall_by_category.png",
        f"recall per category at FPR {target_fpr} (held out)",
    )
    return report


def goals(held_out: dict[str, Any], target_fpr: float) -> dict[str, Any]:
    """The issue's goals, measured: copy-level recall and fused against the best signal."""
    scores = held_out["scores"]
    key = str(target_fpr)
    fused = scores[accuracy.FUSED]["at_fpr"][key]["per_category"]
    copy_cats = [c for c in fused if c in COPY_LEVEL and fused[c]["recall"] is not None]
    copy_recall = sum(fused[c]["recall"] for c in copy_cats) / len(copy_cats) if copy_cats else None
    per_category = {}
    for category, entry in fused.items():
        if entry["recall"] is None:
            continue
        singles = {
            n: s["at_fpr"][key]["per_category"][category]["recall"]
            for n, s in scores.items()
            if n != accuracy.FUSED
        }
        best_name = max(singles, key=lambda n: singles[n] or 0.0)
        per_category[category] = {
            "fused": entry["recall"],
            "best_single": best_name,
            "best_single_recall": singles[best_name],
            "fused_at_least_best": entry["recall"] >= (singles[best_name] or 0.0),
        }
    return {
        "copy_level_recall_at_target": copy_recall,
        "copy_level_goal_0.95_met": copy_recall is not None and copy_recall >= 0.95,
        "fused_vs_best_single": per_category,
        "fused_at_least_best_everywhere": all(
            v["fused_at_least_best"] for v in per_category.values()
        ),
    }


def print_summary(report: dict[str, Any], console: Console) -> None:
    held = report["held_out"]
    key = str(report["config"]["target_fpr"])
    table = Table(title=f"held-out recall at FPR {key} (and 0.01)")
    table.add_column("category")
    names = list(held["scores"])
    for n in names:
        table.add_column(n.replace("_", " "), justify="right")
    categories = sorted(held["scores"][accuracy.FUSED]["at_fpr"][key]["per_category"])
    for category in [*categories, "ALL"]:
        row = [category]
        for n in names:
            at = held["scores"][n]["at_fpr"][key]
            value = at["recall"] if category == "ALL" else at["per_category"][category]["recall"]
            row.append("-" if value is None else f"{value:.2f}")
        table.add_row(*row)
    console.print(table)
    goals = report["goals"]
    console.print(
        f"copy-level recall at FPR {key}: {goals['copy_level_recall_at_target']}; goal 0.95 met: "
        f"{goals['copy_level_goal_0.95_met']}; fused >= best single everywhere: "
        f"{goals['fused_at_least_best_everywhere']}; top-1: {held['top1_accuracy']}",
        highlight=False,
    )
