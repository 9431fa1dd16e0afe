"""Leave-one-domain-out accuracy: fit on the other domains, report on the held-out one.

Two suites are built from the same domains: one with ``seed`` (the fitting suite) and one
with ``seed + 1`` (the report suite: other works, other distractors, other edits). Each is
screened by its own fresh screener with all its domains' works registered, as a service
would hold them. For each domain D the policy is fitted (`accuracy_fit.fit`) on the fitting
suite's records of every other domain and scored on the report suite's records of D; the
policy that would ship is fitted on every domain's fitting records, and its reported
numbers are those held-out ones. Records are saved, so `refit` redoes the report (a new
fusion, a new fit) in seconds without screening.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console

from screener.bench import accuracy, lodo_report, mdsuite
from screener.bench.common import write_json
from screener.bench.domains import Domain, check_distinct
from screener.cli import progress_bar
from screener.core import policy as policy_mod
from screener.core.settings import Settings
from screener.matching.pipeline import Screener

FIT, REPORT = "fit", "report"


def records_path(out_dir: Path, part: str) -> Path:
    return out_dir / f"records-{part}.json.gz"


def run(
    domains: Sequence[Domain],
    *,
    works: int,
    distractors: int,
    distractor_edits: int | None,
    seed: int,
    target_fpr: float,
    review_fpr: float,
    out_dir: Path,
    regions: bool = True,
    command: str = "",
) -> dict[str, Any]:
    check_distinct(domains)
    out_dir.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "domains": {
            d.name: {"folders": [str(f) for f in d.folders], "fonts": d.fonts} for d in domains
        },
        "works_per_domain": works,
        "distractors_per_domain": distractors,
        "distractor_edits": "all" if distractor_edits is None else distractor_edits,
        "fit_seed": seed,
        "report_seed": seed + 1,
        "regions": regions,
    }
    for part, part_seed in ((FIT, seed), (REPORT, seed + 1)):
        records, models, signals = _screen(
            domains, works, distractors, distractor_edits, part_seed, regions, part
        )
        config[f"{part}_queries"] = len(records)
        config["models"], config["signals"] = models, signals
        save(records_path(out_dir, part), records, {**config, "part": part, "seed": part_seed})
    return refit(out_dir, target_fpr, review_fpr, command, config)


def _screen(
    domains: Sequence[Domain],
    works: int,
    distractors: int,
    distractor_edits: int | None,
    seed: int,
    regions: bool,
    part: str,
) -> tuple[list[accuracy.Record], dict[str, Any], list[str]]:
    with (
        tempfile.TemporaryDirectory(prefix=f"screener-lodo-{part}-") as scratch,
        progress_bar(Console(stderr=True)) as bar,
    ):
        task = bar.add_task(
            f"building the {part} suite", total=len(domains) * (works + distractors)
        )
        the_suite = mdsuite.build(
            domains,
            Path(scratch) / "suite",
            works=works,
            distractors=distractors,
            seed=seed,
            distractor_edits=distractor_edits,
            progress=lambda n: bar.advance(task, n),
        )
        settings = Settings(data_dir=Path(scratch) / "data", regions=regions)
        with Screener(settings, policy=policy_mod.load(settings.policy_path)) as screener:
            task = bar.add_task(f"screening the {part} suite", total=len(the_suite.queries))
            records = accuracy.evaluate(screener, the_suite, lambda n: bar.advance(task, n))
            return records, dict(screener.model_specs), list(screener.signals.names)


def save(path: Path, records: Sequence[accuracy.Record], config: dict[str, Any]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump({"config": config, "records": [asdict(r) for r in records]}, handle)


def load(path: Path) -> tuple[list[accuracy.Record], dict[str, Any]]:
    if not path.is_file():
        raise ValueError(f"no saved records at {path} (run the benchmark with --domain first)")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        saved = json.load(handle)
    records = [
        accuracy.Record(**{**r, "candidates": tuple((w, v) for w, v in r["candidates"])})
        for r in saved["records"]
    ]
    return records, dict(saved.get("config", {}))


def refit(
    records_dir: Path,
    target_fpr: float,
    review_fpr: float,
    command: str,
    config: dict[str, Any] | None = None,
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """The leave-one-domain-out report from the saved records in ``records_dir``."""
    fit_records, fit_config = load(records_path(records_dir, FIT))
    report_records, _ = load(records_path(records_dir, REPORT))
    out = out_dir or records_dir
    template = policy_mod.load(Settings().policy_path)
    report = lodo_report.report(
        fit_records,
        report_records,
        template,
        target_fpr=target_fpr,
        review_fpr=review_fpr,
        config={**fit_config, **(config or {}), "records": str(records_dir)},
        command=command,
    )
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "lodo.json", report)
    (out / "lodo.md").write_text(lodo_report.markdown(report))
    shipped = policy_mod.parse(report["shipping_policy"], "the fitted policy")
    (out / "policy-all-domains.yaml").write_text(policy_mod.dumps(shipped))
    return report
