"""``screener bench throughput``: images per second, and where a check's time goes.

Fingerprinting: each fingerprinter alone, one image at a time against batches, on the same
seeded 512-pixel images the screener feeds them; and the whole default signal set with and
without regions. Checks: the share of a check spent decoding, fingerprinting, searching
and scoring, with the indexes optionally padded with synthetic references so that search
runs at registry scale. One-at-a-time is the baseline every ratio is measured against.
A setting's cost is measured against the default check timed in the same run (a busy
machine slows both alike); ``--settings`` times only some of them.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from PIL import Image
from rich.console import Console
from rich.table import Table

from screener import index as vindex
from screener import models
from screener.bench.common import machine, percentile_ms, write_json
from screener.core import samples
from screener.core.errors import SignalUnavailable
from screener.core.settings import Settings, default_signals
from screener.matching.pipeline import Screener
from screener.matching.signal_indexes import decode_vectors

DEFAULT_OUT = Path("benchmarks/results/throughput")
STAGES = ("decode", "fingerprint", "search", "score", "verify", "verdict")
# Issue 22: training one work's character model from this many references may take at
# most TRAINING_S seconds.
TRAINING_REFERENCES = 10
TRAINING_S = 10.0
# Issue 22: the semantic signal may add at most this to a check's p50 on 2 cores.
SEMANTIC_ADDED_P50_MS = 30.0


def _images(count: int, seed: int, size: tuple[int, int] = (512, 384)) -> list[Image.Image]:
    return [samples.scene(seed * 10_000 + i, size=size) for i in range(count)]


def fingerprinting(
    names: Sequence[str], images: Sequence[Image.Image], batch: int, warmup: int = 2
) -> dict[str, Any]:
    """Images per second per fingerprinter, batch 1 (the baseline) against ``batch``."""
    results: dict[str, Any] = {}
    for name in names:
        try:
            fingerprinter = models.create(name)
        except models.ModelUnavailable as exc:
            results[name] = {"unavailable": str(exc)}
            continue
        fingerprinter.fingerprint(list(images[:warmup]))
        start = time.perf_counter()
        for image in images:
            fingerprinter.fingerprint([image])
        single = len(images) / (time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(0, len(images), batch):
            fingerprinter.fingerprint(list(images[i : i + batch]))
        batched = len(images) / (time.perf_counter() - start)
        results[name] = {
            "spec_id": fingerprinter.spec_id,
            "images_per_s_batch_1": round(single, 2),
            f"images_per_s_batch_{batch}": round(batched, 2),
            "batch_speedup": round(batched / single, 3),
        }
    return results


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _pad(screener: Screener, references: int, seed: int, structure: str) -> dict[str, int]:
    """Rebuild every index at registry scale, with synthetic references the catalog lacks.

    Each index is made as the screener would make it for that many references (the
    structure ``auto`` picks by size), holding the registered fingerprints plus the padding.
    Hits on padding ids find no owner in the catalog and drop out, as a removed reference's.
    """
    rng = np.random.default_rng(seed)
    padded = {}
    base = 1 << 40  # far above any catalog id
    for signal, old in list(screener.indexes.indexes.items()):
        spec = screener.indexes.specs[signal]
        idx = vindex.create(spec, structure, expected_size=references + len(old))
        stored = [
            f for batch in screener.catalog.iter_fingerprints(signal, spec.spec_id) for f in batch
        ]
        if stored:
            idx.add(
                np.asarray([i for i, _ in stored], dtype=np.int64),
                decode_vectors(spec, [v for _, v in stored]),
            )
        screener.indexes.indexes[signal] = idx
        for start in range(0, references, 50_000):
            n = min(50_000, references - start)
            ids = np.arange(base + start, base + start + n, dtype=np.int64)
            if spec.metric == "hamming":
                vectors = rng.integers(0, 256, (n, spec.dim // 8), dtype=np.uint8)
            else:
                centres = rng.normal(size=(64, spec.dim)).astype(np.float32)
                raw = centres[rng.integers(0, 64, n)] + 0.6 * rng.normal(size=(n, spec.dim))
                vectors = (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)
            idx.add(ids, vectors)
        padded[signal] = len(idx)
    return padded


def checks(
    count: int,
    works: int,
    seed: int,
    regions: bool,
    pad: int,
    structure: str,
    local: bool = True,
    partial_methods: bool = True,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Time the stages of real checks (copies and unrelated images, half each).
    ``partial_methods`` False: without the region proposals, the located and the placed
    region (the check before issue 21, measured beside it); ``overrides``: further
    settings (the fast check's)."""
    with tempfile.TemporaryDirectory(prefix="screener-throughput-") as scratch:
        chosen: dict[str, Any] = {
            "regions": regions,
            "index_structure": structure,
            "local_features": local,
            "region_proposals": partial_methods,
            "located_region": partial_methods,
            "placed_region": partial_methods,
        }
        settings = Settings(data_dir=Path(scratch), **(chosen | (overrides or {})))
        with Screener(settings) as screener:
            originals = _images(works, seed + 1)
            for i, image in enumerate(originals):
                screener.registry.register(f"w{i}", [_png(image)])
            sizes = _pad(screener, pad, seed, structure) if pad else screener.indexes.sizes()
            queries = [
                _png(originals[i % works].resize((400, 300)))
                if i % 2 == 0
                else _png(samples.scene(seed * 7919 + i))
                for i in range(count)
            ]
            screener.check(queries[0])  # warm-up
            laps: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "total")}
            cpu: list[float] = []  # CPU seconds of every thread: robust to a busy machine
            for query in queries:
                start_cpu = time.process_time()
                timings = screener.check(query).timings_ms
                cpu.append(time.process_time() - start_cpu)
                for stage, samples_s in laps.items():
                    samples_s.append(timings.get(stage, 0.0) / 1000.0)
            kinds = {s: idx.kind for s, idx in screener.indexes.indexes.items()}
            training = _training(screener, seed) if screener.characters is not None else None
    total = float(np.sum(laps["total"]))
    return {
        "checks": count,
        "settings": overrides or {},
        "regions": regions,
        "local_features": local,
        "index_sizes": sizes,
        "index_kinds": kinds,
        "checks_per_s": round(count / total, 3),
        "p50_ms": round(percentile_ms(laps["total"], 50), 2),
        "p99_ms": round(percentile_ms(laps["total"], 99), 2),
        "cpu_p50_ms": round(percentile_ms(cpu, 50), 2),
        "stage_share": {s: round(float(np.sum(laps[s])) / total, 4) for s in STAGES},
        "stage_p50_ms": {s: round(percentile_ms(laps[s], 50), 2) for s in STAGES},
        **({"character_training": training} if training is not None else {}),
    }


def _training(screener: Screener, seed: int, rounds: int = 3) -> dict[str, Any]:
    """Seconds to train one work's character model from ``TRAINING_REFERENCES``
    references (the model alone, after registration stored them), median of ``rounds``;
    with the other works' models and views already in place as its negatives."""
    assert screener.characters is not None
    pictures = _images(TRAINING_REFERENCES, seed + 3, (384, 384))
    screener.registry.register("trained", [_png(p) for p in pictures])
    ids = [r.id for r in screener.catalog.references("trained")]
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        screener.characters.train("trained", ids)
        seconds.append(time.perf_counter() - start)
    return {
        "references": len(ids),
        "median_s": round(float(np.median(seconds)), 3),
        "max_s": round(max(seconds), 3),
    }


def semantic_settings() -> dict[str, Any]:
    """The default signals and the opt-in semantic one. Required: where it cannot run the
    setting says so instead of timing the default check a second time."""
    return {"signals": [*default_signals(), "semantic"], "require_signals": ["semantic"]}


def settings_args(fast: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every setting a run can time, by name, as arguments of `checks` (the default check,
    ``regions_on``, first; the fast check last: its thread plan sets OpenCV's process-wide
    pool)."""
    return {
        "regions_on": {},
        "regions_off": {"regions": False},
        "local_off": {"local": False},
        "partial_methods_off": {"partial_methods": False},
        "placed_off": {"overrides": {"placed_region": False}},
        "aligned_off": {"overrides": {"aligned_agreement": False}},
        "sscd_windows_on": {"overrides": {"sscd_windows": True}},
        "semantic_on": {"overrides": semantic_settings()},
        "fast": {"overrides": fast},
    }


SETTINGS = tuple(settings_args({}))
# The default check against the same check without one of its features, the check before
# that feature (issue 21: within 1.5 times the check before), by the setting that turns it
# off: the partial-copy methods, the placed region, the aligned agreement.
WITHOUT_TARGETS = {
    "partial_methods_off": "partial_methods_p50_ratio_at_most_1.5",
    "placed_off": "placed_region_p50_ratio_at_most_1.5",
    "aligned_off": "aligned_agreement_p50_ratio_at_most_1.5",
}


def _timed(
    count: int, works: int, seed: int, pad: int, structure: str, args: dict[str, Any]
) -> dict[str, Any]:
    """One setting's checks, or why its signals cannot run here."""
    kwargs = {"regions": True, **args}
    try:
        return checks(count, works, seed, pad=pad, structure=structure, **kwargs)
    except SignalUnavailable as exc:
        return {"unavailable": str(exc), "settings": args.get("overrides", {})}


def _ratio_target(new: dict[str, Any], old: dict[str, Any], limit: float) -> dict[str, Any]:
    """A check's p50 against the same check without a feature, measured in one run."""
    ratio = round(new["p50_ms"] / old["p50_ms"], 3) if old["p50_ms"] else None
    return {"measured": ratio, "pass": ratio is not None and ratio <= limit}


def added_target(new: dict[str, Any], old: dict[str, Any], limit_ms: float) -> dict[str, Any]:
    """What a feature adds to a check's p50 (ms, and the ratio) against the same check
    without it, measured in one run; and what it adds to each stage's p50 and to the CPU
    p50, to show where the time goes."""
    if "unavailable" in new:
        return {"measured": None, "pass": False, "unavailable": new["unavailable"]}
    added = round(new["p50_ms"] - old["p50_ms"], 2)
    return {
        "measured": added,
        "ratio": round(new["p50_ms"] / old["p50_ms"], 3) if old["p50_ms"] else None,
        "limit_ms": limit_ms,
        "pass": added <= limit_ms,
        "cpu_p50_added_ms": round(new["cpu_p50_ms"] - old["cpu_p50_ms"], 2),
        "stage_p50_added_ms": {
            s: round(new["stage_p50_ms"][s] - old["stage_p50_ms"][s], 2) for s in STAGES
        },
    }


def training_target(entry: dict[str, Any]) -> dict[str, Any]:
    """Training one work's character model from 10 references within 10 s."""
    training = entry.get("character_training")
    if training is None:
        return {"measured": None, "pass": False, "unavailable": entry.get("unavailable", "")}
    return {
        "measured": training["median_s"],
        "references": training["references"],
        "limit_s": TRAINING_S,
        "pass": training["references"] >= TRAINING_REFERENCES
        and training["median_s"] <= TRAINING_S,
    }


def fast_settings(model: str) -> dict[str, Any]:
    """The fast check: whole image and regions in one SSCD call, one thread plan."""
    return {"sscd_model": model, "sscd_shape_step": 16, "thread_policy": "cores"}


def _fast_ratio(runs: dict[str, Any]) -> dict[str, Any]:
    """The fast check against the default measured in the same run (above 1: faster)."""
    default, fast = runs["regions_on"], runs["fast"]
    return {
        "settings": fast["settings"],
        "p50_speedup": round(default["p50_ms"] / fast["p50_ms"], 3) if fast["p50_ms"] else None,
        "p99_speedup": round(default["p99_ms"] / fast["p99_ms"], 3) if fast["p99_ms"] else None,
        "cpu_p50_speedup": round(default["cpu_p50_ms"] / fast["cpu_p50_ms"], 3)
        if fast["cpu_p50_ms"]
        else None,
        "fingerprint_p50_speedup": round(
            default["stage_p50_ms"]["fingerprint"] / fast["stage_p50_ms"]["fingerprint"], 3
        )
        if fast["stage_p50_ms"]["fingerprint"]
        else None,
    }


def _local_cost(on: dict[str, Any], off: dict[str, Any]) -> dict[str, Any]:
    """Local verification's share of a check, and the whole check against the global
    fingerprinting stage alone (the cost target of local features)."""
    fingerprint = on["stage_share"]["fingerprint"]
    ratio = round(1.0 / fingerprint, 3) if fingerprint else None
    return {
        "verify_share": on["stage_share"]["verify"],
        "check_over_fingerprinting": ratio,
        "with_over_without_local_p50": round(on["p50_ms"] / off["p50_ms"], 3)
        if off["p50_ms"]
        else None,
        "pass": ratio is not None and ratio <= 2.0,
    }


def run(
    *,
    images: int,
    batch: int,
    checks_count: int,
    works: int,
    pad: int,
    structure: str,
    seed: int,
    out: Path,
    command: str = "",
    fast_model: str = "sscd",
    only_fast: bool = False,
    settings: Sequence[str] = SETTINGS,
) -> dict[str, Any]:
    """``settings``: the names (of `SETTINGS`) timed; ``only_fast``: the default and the
    fast check only, without targets."""
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {list(SETTINGS)}")
    chosen = ("regions_on", "fast") if only_fast else tuple(settings)
    pictures = _images(images, seed)
    fast = fast_settings(fast_model)
    report: dict[str, Any] = {
        "benchmark": "throughput",
        "command": command,
        "machine": machine(),
        "config": {
            "images": images,
            "batch": batch,
            "checks": checks_count,
            "works": works,
            "pad_references": pad,
            "structure": structure,
            "seed": seed,
            "settings": list(chosen),
        },
        "fingerprinting": fingerprinting(["phash", "pdq", "sscd"], pictures, batch),
    }
    report["checks"] = {
        name: _timed(checks_count, works, seed, pad, structure, args)
        for name, args in settings_args(fast).items()
        if name in chosen
    }
    timed = {name for name, entry in report["checks"].items() if "unavailable" not in entry}
    if {"regions_on", "fast"} <= timed:
        report["fast_over_default"] = _fast_ratio(report["checks"])
    if not only_fast:
        report["targets"] = _targets(report)
    write_json(out / "throughput.json", report)
    _plot(report, out / "throughput.png")
    return report


def _targets(report: dict[str, Any]) -> dict[str, Any]:
    """Each target whose settings were timed in this run (the semantic one also where its
    setting could not run: it says why)."""
    runs = {name: entry for name, entry in report["checks"].items() if "unavailable" not in entry}
    speedup = report["fingerprinting"].get("sscd", {}).get("batch_speedup")
    targets: dict[str, Any] = {
        "batched_fingerprinting_at_least_1.5x": {
            "measured": speedup,
            "pass": speedup is not None and speedup >= 1.5,
            "note": "SSCD, the costly signal; hashes gain nothing from batching",
        },
    }
    on = runs.get("regions_on")
    if on is None:
        return targets
    targets["lookup_at_most_10pct_of_check"] = {
        "measured": on["stage_share"]["search"],
        "pass": on["stage_share"]["search"] <= 0.10,
        "index_sizes": on["index_sizes"],
    }
    if "regions_off" in runs:
        off = runs["regions_off"]
        targets["regions_cost_ratio"] = (
            round(on["p50_ms"] / off["p50_ms"], 3) if off["p50_ms"] else None
        )
    for setting, target in WITHOUT_TARGETS.items():
        if setting in runs:
            targets[target] = _ratio_target(on, runs[setting], 1.5)
    if "sscd_windows_on" in runs:
        targets["sscd_windows_p50_ratio_at_most_1.5"] = _ratio_target(
            runs["sscd_windows_on"], on, 1.5
        )
    if "local_off" in runs:
        targets["check_at_most_2x_global_fingerprinting"] = _local_cost(on, runs["local_off"])
    if "semantic_on" in report["checks"]:
        targets["semantic_added_p50_ms_at_most_30"] = added_target(
            report["checks"]["semantic_on"], on, SEMANTIC_ADDED_P50_MS
        )
        targets["character_training_10_references_at_most_10_s"] = training_target(
            report["checks"]["semantic_on"]
        )
    return targets


def _plot(report: dict[str, Any], path: Path) -> None:
    from screener.bench.plots import pyplot

    plt = pyplot()

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=90)
    names = [n for n, v in report["fingerprinting"].items() if "spec_id" in v]
    batch = report["config"]["batch"]
    one = [report["fingerprinting"][n]["images_per_s_batch_1"] for n in names]
    many = [report["fingerprinting"][n][f"images_per_s_batch_{batch}"] for n in names]
    xs = np.arange(len(names))
    left.bar(xs - 0.2, one, 0.4, label="batch 1")
    left.bar(xs + 0.2, many, 0.4, label=f"batch {batch}")
    left.set_xticks(xs, names)
    left.set_yscale("log")
    left.set_ylabel("images / s")
    left.set_title("fingerprinting throughput")
    left.legend()
    settings = [n for n, v in report["checks"].items() if "stage_share" in v]
    bottom = np.zeros(len(settings))
    for stage in STAGES:
        shares = np.array([report["checks"][s]["stage_share"][stage] for s in settings])
        right.bar(settings, shares, bottom=bottom, label=stage)
        bottom += shares
    right.set_ylabel("share of a check's time")
    right.set_title("where a check's time goes")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def command(
    images: Annotated[int, typer.Option(help="images per fingerprinter")] = 64,
    batch: Annotated[int, typer.Option(help="batch size compared with one at a time")] = 16,
    checks_count: Annotated[int, typer.Option("--checks", help="checks timed per setting")] = 60,
    works: Annotated[int, typer.Option(help="works registered")] = 20,
    pad: Annotated[int, typer.Option(help="synthetic references added to every index")] = 100_000,
    structure: Annotated[
        str, typer.Option(help="index structure ('auto' or FAISS string)")
    ] = "auto",
    seed: Annotated[int, typer.Option()] = 0,
    out: Annotated[Path, typer.Option(help="where JSON and plots go")] = DEFAULT_OUT,
    fast_model: Annotated[
        str, typer.Option(help="SSCD model of the fast check (sscd or sscd_distilled)")
    ] = "sscd",
    only_fast: Annotated[
        bool, typer.Option(help="time only the default and the fast check")
    ] = False,
    settings: Annotated[
        str, typer.Option(help=f"settings to time, comma-separated, of {','.join(SETTINGS)}")
    ] = ",".join(SETTINGS),
) -> None:
    """Fingerprinting throughput, batch 1 against batched, and the stages of a check."""
    chosen = [name.strip() for name in settings.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SETTINGS))
    if unknown or not chosen:
        raise typer.BadParameter(f"--settings takes names of {', '.join(SETTINGS)}, not {unknown}")
    report = run(
        images=images,
        batch=batch,
        checks_count=checks_count,
        works=works,
        pad=pad,
        structure=structure,
        seed=seed,
        out=out,
        command=" ".join(sys.argv),
        fast_model=fast_model,
        only_fast=only_fast,
        settings=chosen,
    )
    console = Console()
    table = Table("fingerprinter", "batch 1 img/s", f"batch {batch} img/s", "speed-up")
    for name, entry in report["fingerprinting"].items():
        if "spec_id" in entry:
            table.add_row(
                name,
                str(entry["images_per_s_batch_1"]),
                str(entry[f"images_per_s_batch_{batch}"]),
                str(entry["batch_speedup"]),
            )
        else:
            table.add_row(name, "unavailable", "", "")
    console.print(table)
    for setting, entry in report["checks"].items():
        if "unavailable" in entry:
            console.print(f"{setting}: unavailable: {entry['unavailable']}", highlight=False)
            continue
        console.print(
            f"{setting}: {entry['checks_per_s']} checks/s, p50 {entry['p50_ms']} ms, "
            f"shares {entry['stage_share']}",
            highlight=False,
        )
    if "fast_over_default" in report:
        console.print(f"fast over default: {report['fast_over_default']}", highlight=False)
    if "targets" in report:
        console.print(f"targets: {report['targets']}", highlight=False)
