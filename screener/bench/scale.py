"""``screener bench scale``: what grows with the registry, measured with works registered
through the real registration path (`screener.matching.bulk`, as ``screener works import``).

Padding the indexes with synthetic vectors leaves out everything that grows per work
(catalog rows, keypoint sets, the descriptor index, cohort levels), so here every
reference is a generated picture registered for real. At each checkpoint the benchmark
records the registration rate since the last one, the process's resident memory and the
data directory's files per reference, the start-up time of a fresh process on that
directory, and the p50/p99 of checks (copies of registered works and unrelated images,
half each). The first checkpoint is the baseline every ratio is measured against.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from PIL import Image
from rich.console import Console

from screener.bench.common import machine, percentile_ms, write_json
from screener.core import samples
from screener.core.settings import Settings
from screener.matching.bulk import DEFAULT_BATCH, BulkWork, register_many
from screener.matching.pipeline import Screener

DEFAULT_OUT = Path("benchmarks/results/scale")
IMAGE_SIZE = (320, 240)  # a generated work; the screener downscales to 512 anyway

# Run in a fresh interpreter: the time to a screener ready to check, and its memory.
STARTUP = r"""
import json, sys, time
start = time.perf_counter()
from screener import Screener, Settings
with Screener(Settings(data_dir=sys.argv[1], **json.loads(sys.argv[2]))) as s:
    ready = time.perf_counter() - start
    status = open("/proc/self/status").read()
    rss = int(next(l for l in status.splitlines() if l.startswith("VmRSS")).split()[1])
    print(json.dumps({"startup_s": ready, "rss_kb": rss, "works": s.catalog.count_works()}))
"""


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _work_image(seed: int, i: int) -> Image.Image:
    return samples.scene(seed * 1_000_003 + i, size=IMAGE_SIZE)


def rss_kb() -> int:
    """This process's resident memory (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status: the scale benchmark needs Linux")


def files(data_dir: Path) -> dict[str, int]:
    """Bytes on disk: the catalog, the vector indexes and the descriptor index."""
    sizes = {"catalog": 0, "indexes": 0, "descriptors": 0}
    for path in data_dir.rglob("*"):
        if not path.is_file():
            continue
        if path.name.startswith("descriptors-"):
            sizes["descriptors"] += path.stat().st_size
        elif path.parent.name == "indexes":
            sizes["indexes"] += path.stat().st_size
        elif path.name.startswith("catalog"):
            sizes["catalog"] += path.stat().st_size
    return sizes


def checkpoints(works: int, first: int) -> list[int]:
    """Registry sizes to measure at: ``first``, then x10 steps (and x3 between), ``works``."""
    marks = {works}
    size = first
    while size < works:
        marks.add(size)
        if size * 3 < works:
            marks.add(size * 3)
        size *= 10
    return sorted(marks)


def _startup(data_dir: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", STARTUP, str(data_dir), json.dumps(overrides)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the start-up probe failed: {done.stderr[-2000:]}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def _checks(screener: Screener, registered: int, count: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed + registered)
    totals: list[float] = []
    for i in range(count):
        if i % 2 == 0:  # a copy of a registered work, resized
            image = _work_image(seed, int(rng.integers(registered))).resize((280, 210))
        else:
            image = samples.scene(seed * 7919 + 10_000_000 + i, size=IMAGE_SIZE)
        timings = screener.check(_png(image)).timings_ms
        totals.append(timings["total"] / 1000.0)
    return {
        "p50_ms": round(percentile_ms(totals, 50), 2),
        "p99_ms": round(percentile_ms(totals, 99), 2),
    }


def run(
    *,
    works: int,
    first: int,
    batch: int,
    checks: int,
    seed: int,
    out: Path,
    overrides: dict[str, Any] | None = None,
    command: str = "",
) -> dict[str, Any]:
    overrides = overrides or {}
    marks = checkpoints(works, first)
    points: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="screener-scale-") as scratch:
        data_dir = Path(scratch) / "data"
        with Screener(Settings(data_dir=data_dir, **overrides)) as screener:
            screener.check(_png(samples.scene(seed * 7919 + 20_000_000, size=IMAGE_SIZE)))
            rss_empty = rss_kb()
            registered, previous_s = 0, 0.0
            for mark in marks:
                spent, cpu = 0.0, 0.0
                while registered < mark:
                    size = min(batch, mark - registered)
                    chunk = [
                        BulkWork(f"w{i}", (_png(_work_image(seed, i)),))
                        for i in range(registered, registered + size)
                    ]
                    start, start_cpu = time.perf_counter(), time.process_time()
                    done = register_many(screener, chunk, batch=batch)
                    spent += time.perf_counter() - start
                    cpu += time.process_time() - start_cpu
                    failed = [o for o in done if o.registered is None]
                    if failed:
                        raise RuntimeError(f"registration failed: {failed[0]}")
                    registered += size
                start = time.perf_counter()
                screener.registry.save()
                save_s = time.perf_counter() - start
                rate_works = mark - (points[-1]["works"] if points else 0)
                on_disk = files(data_dir)
                point: dict[str, Any] = {
                    "works": mark,
                    "catalog_log_position": screener.catalog.high_water(),
                    "registration_per_s": round(rate_works / spent, 2) if spent else None,
                    # CPU seconds (all threads) per work: unlike the wall-clock rate, it
                    # does not depend on what else shares the cores.
                    "registration_cpu_s_per_work": round(cpu / rate_works, 4),
                    "save_s": round(save_s, 3),
                    "rss_kb": rss_kb(),
                    "rss_per_reference_kb": round((rss_kb() - rss_empty) / mark, 2),
                    "files": on_disk,
                    "descriptor_index_entries": len(screener.local.votes)
                    if screener.local is not None
                    else 0,
                    **_checks(screener, registered, checks, seed),
                    "startup": _startup(data_dir, overrides),
                }
                point["files_per_reference_kb"] = {
                    kind: round(size / 1024 / mark, 2) for kind, size in on_disk.items()
                }
                points.append(point)
                previous_s += spent
    base = points[0]
    report: dict[str, Any] = {
        "benchmark": "scale",
        "command": command,
        "machine": machine(),
        "config": {
            "works": works,
            "first": first,
            "batch": batch,
            "checks": checks,
            "seed": seed,
            "settings": overrides,
            "image_size": IMAGE_SIZE,
        },
        "points": points,
        "registration_per_s_overall": round(works / previous_s, 2) if previous_s else None,
        "vs_first": {
            "check_p50_ratio": round(points[-1]["p50_ms"] / base["p50_ms"], 3),
            "startup_ratio": round(
                points[-1]["startup"]["startup_s"] / base["startup"]["startup_s"], 3
            ),
        },
    }
    write_json(out / "scale.json", report)
    _plot(report, out / "scale.png")
    return report


def _plot(report: dict[str, Any], path: Path) -> None:
    from screener.bench.plots import pyplot

    plt = pyplot()
    points = report["points"]
    n = [p["works"] for p in points]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), dpi=90)
    rate, memory, startup, check = axes.ravel()
    rate.plot(n, [p["registration_per_s"] or 0 for p in points], marker="o")
    rate.set_title("registration (works / s, since the last point)")
    memory.plot(n, [p["rss_per_reference_kb"] for p in points], marker="o", label="RSS")
    for kind in ("catalog", "indexes", "descriptors"):
        values = [p["files_per_reference_kb"][kind] for p in points]
        memory.plot(n, values, marker=".", label=f"files: {kind}")
    memory.set_title("KB per reference")
    memory.legend(fontsize=8)
    startup.plot(n, [p["startup"]["startup_s"] for p in points], marker="o")
    startup.set_title("start-up of a fresh process (s)")
    check.plot(n, [p["p50_ms"] for p in points], marker="o", label="p50")
    check.plot(n, [p["p99_ms"] for p in points], marker="o", label="p99")
    check.set_title("check (ms)")
    check.legend(fontsize=8)
    for ax in axes.ravel():
        ax.set_xscale("log")
        ax.set_xlabel("registered works")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def command(
    works: Annotated[int, typer.Option(min=1, help="works registered in all")] = 10_000,
    first: Annotated[int, typer.Option(min=1, help="the first checkpoint (the baseline)")] = 100,
    batch: Annotated[int, typer.Option(min=1, help="works per bulk batch")] = DEFAULT_BATCH,
    checks: Annotated[int, typer.Option(min=2, help="checks timed at each checkpoint")] = 40,
    fast: Annotated[
        bool, typer.Option(help="with the fast check's settings (bench throughput's)")
    ] = False,
    seed: Annotated[int, typer.Option()] = 0,
    out: Annotated[Path, typer.Option(help="where JSON and plots go")] = DEFAULT_OUT,
) -> None:
    """Registration rate, memory and files per reference, start-up and check p50/p99 as
    the registry grows (works registered through the real path)."""
    from screener.bench.throughput import fast_settings

    report = run(
        works=works,
        first=min(first, works),
        batch=batch,
        checks=checks,
        seed=seed,
        out=out,
        overrides=fast_settings("sscd") if fast else {},
        command=" ".join(sys.argv),
    )
    console = Console()
    for p in report["points"]:
        console.print(
            f"{p['works']} works: {p['registration_per_s']} works/s "
            f"({p['registration_cpu_s_per_work']} CPU s/work), RSS "
            f"{p['rss_per_reference_kb']} KB/ref, files {p['files_per_reference_kb']} KB/ref, "
            f"start-up {p['startup']['startup_s']:.2f} s, check p50 {p['p50_ms']} ms "
            f"p99 {p['p99_ms']} ms",
            highlight=False,
        )
    console.print(f"against the first point: {report['vs_first']}", highlight=False)
