"""``screener bench http``: a bounded load against a locally started ``screener serve``.

A fresh data directory gets generated works (``screener.core.samples.scene``) and keys; queries
are seeded edits of the works (copies) and never-registered scenes (unrelated), one image
per request. For micro-batching off and for on, ``screener serve`` starts as a child
process on a free loopback port, each on its own copy of the data; after ``/readyz`` and a
warm-up, each concurrency level runs on one server and then the other (the order
alternating), until it has sent ``--requests`` requests or ``--duration`` seconds have
passed, whichever comes first. Every level records throughput, latency percentiles, errors (any
non-200 answer, per-image error or transport failure), the mean batch the server formed
(from its ``/metrics``), the CPU the server, this client and every other process used,
and the load average before and after. Speeds are reported as ratios to concurrency 1 and
to batching off, both measured in the same run.

Only loopback addresses are accepted: this is a load generator.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console

from screener.bench.common import machine, write_json
from screener.bench.http_clients import Outcome, Query, build_queries, level, load, prepare
from screener.bench.http_report import _plot, _ratio, load_summary, print_summary
from screener.bench.http_server import (
    MODES,
    OWN_VARIABLES,
    Server,
    check_loopback,
    server_env,
    start_server,
    stop_server,
)

__all__ = ["check_loopback", "command", "run"]

DEFAULT_OUT = Path("benchmarks/results/http")
DEFAULT_CONCURRENCY = (1, 2, 4, 8, 16)
FLAGGED = frozenset({"review", "block"})


def _log(message: str) -> None:
    print(f"[http {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# the run -----------------------------------------------------------------------------------


def _decision_summary(
    queries: Sequence[Query], outcomes: Sequence[Outcome]
) -> tuple[dict[str, Any], dict[int, set[str]]]:
    seen: dict[int, set[str]] = {}
    kinds: dict[str, Counter[str]] = {"copy": Counter(), "unrelated": Counter()}
    right_work = 0
    for o in outcomes:
        if not o.ok or o.decision is None:
            continue
        query = queries[o.query % len(queries)]
        seen.setdefault(o.query % len(queries), set()).add(o.decision)
        kinds[query.kind][o.decision] += 1
        if query.kind == "copy" and o.decision in FLAGGED and o.top_work == query.work:
            right_work += 1
    copies = sum(kinds["copy"].values())
    unrelated = sum(kinds["unrelated"].values())
    summary = {
        "copies_checked": copies,
        "copies_flagged_right_work": right_work,
        "copy_decisions": dict(kinds["copy"]),
        "unrelated_checked": unrelated,
        "unrelated_allowed": kinds["unrelated"]["allow"],
        "unrelated_decisions": dict(kinds["unrelated"]),
    }
    return summary, seen


@dataclass
class Mode:
    """One server setting under test: its server, its report and every outcome."""

    name: str
    server: Server
    report: dict[str, Any]
    outcomes: list[Outcome] = field(default_factory=list)


def _warm(
    mode: Mode, key: str, queries: Sequence[Query], top: int, count: int, timeout: float
) -> None:
    warm, warm_s, _ = asyncio.run(
        load(
            mode.server.url,
            key,
            queries,
            concurrency=top,
            requests=count,
            duration=600.0,
            timeout=timeout,
        )
    )
    mode.report["warmup"] = {
        "requests": len(warm),
        "concurrency": top,
        "errors": sum(not o.ok for o in warm),
        "elapsed_s": round(warm_s, 2),
    }


def _stop(mode: Mode) -> None:
    mode.report["stop"] = stop_server(mode.server)
    text = mode.server.log_tail(10_000_000)
    mode.report["stop"]["graceful"] = "Application shutdown complete" in text
    mode.report["server_log_errors"] = sum(
        '"level": "error"' in line or '"level": "critical"' in line for line in text.splitlines()
    )


def run_modes(
    prepared: Path,
    scratch: Path,
    key: str,
    queries: Sequence[Query],
    *,
    host: str,
    concurrency: Sequence[int],
    requests: int,
    duration: float,
    warmup: int,
    timeout: float,
    start_timeout: float,
) -> dict[str, Mode]:
    """Start one server per setting, each on its own copy of the prepared data, and warm
    each; then run every concurrency level on both, back to back, the order alternating
    from level to level. The idle server costs no CPU, and interleaving keeps a change in
    the machine's other load from landing on one setting only."""
    modes: dict[str, Mode] = {}
    try:
        for name, batching in MODES.items():
            data_dir = scratch / f"data-{name}"
            shutil.copytree(prepared, data_dir)
            _log(f"batching {name}: starting screener serve")
            server = start_server(
                data_dir, batching, host, scratch / f"server-{name}.log", start_timeout
            )
            modes[name] = Mode(
                name,
                server,
                {"batching": batching, "start_s": server.start_s, "readyz": server.ready},
            )
            _log(f"batching {name}: ready in {server.start_s} s at {server.url}; warming up")
            _warm(modes[name], key, queries, max(concurrency), warmup, timeout)
        for mode in modes.values():
            mode.report["levels"] = []
        for position, c in enumerate(concurrency):
            order = list(modes.values())
            if position % 2:
                order.reverse()
            for mode in order:
                entry, outcomes = asyncio.run(
                    level(
                        mode.server,
                        key,
                        queries,
                        concurrency=c,
                        requests=requests,
                        duration=duration,
                        timeout=timeout,
                    )
                )
                entry["run_order"] = [m.name for m in order].index(mode.name)
                mode.outcomes.extend(outcomes)
                mode.report["levels"].append(entry)
                _log(
                    f"batching {mode.name}, concurrency {c}: {entry['throughput_rps']} req/s, "
                    f"p50 {entry['p50_ms']} ms, p99 {entry['p99_ms']} ms, "
                    f"errors {entry['errors']}, mean batch {entry.get('mean_batch_images')}, "
                    f"other processes {entry.get('other_processes_cores_busy')} cores"
                )
    finally:
        for mode in modes.values():
            _stop(mode)
    for mode in modes.values():
        levels = mode.report["levels"]
        base = levels[0]["throughput_rps"]
        for entry in levels:
            entry["throughput_vs_baseline"] = (
                round(entry["throughput_rps"] / base, 3) if base else None
            )
        mode.report["baseline_concurrency"] = levels[0]["concurrency"]
    return modes


def run(
    *,
    works: int = 20,
    queries_count: int = 40,
    requests: int = 300,
    duration: float = 30.0,
    concurrency: Sequence[int] = DEFAULT_CONCURRENCY,
    warmup: int = 16,
    seed: int = 0,
    host: str = "127.0.0.1",
    timeout: float = 120.0,
    start_timeout: float = 300.0,
    out: Path = DEFAULT_OUT,
    command: str = "",
) -> dict[str, Any]:
    """Run the load for batching off and on; write ``results.json`` and ``http_load.png``."""
    host = check_loopback(host)
    levels = sorted(set(concurrency))
    if not levels or levels[0] < 1:
        raise ValueError("concurrency levels must be positive integers")
    if works < 1 or queries_count < 2 or requests < 1 or duration <= 0:
        raise ValueError("--works, --requests and --duration must be positive, --queries >= 2")
    try:
        import httpx  # noqa: F401
    except ImportError:
        raise ValueError("the HTTP benchmark needs httpx: pip install httpx") from None
    info = machine()
    _log(
        f"machine: {info['cpu']} ({info['cores']} cores), python {info['python']}, "
        f"onnxruntime {info['libraries'].get('onnxruntime')}, "
        f"load average {[round(x, 2) for x in os.getloadavg()]}"
    )
    from screener.service.settings import ServiceSettings

    with tempfile.TemporaryDirectory(prefix="screener-http-") as scratch_name:
        scratch = Path(scratch_name)
        prepared = scratch / "prepared"
        _log(f"registering {works} generated works")
        key, setup = prepare(prepared, works, seed)
        queries = build_queries(works, queries_count, seed)
        setup["queries"] = {
            "count": len(queries),
            "copies": sum(q.kind == "copy" for q in queries),
            "unrelated": sum(q.kind == "unrelated" for q in queries),
            "mean_bytes": round(float(np.mean([len(q.data) for q in queries]))),
        }
        defaults = ServiceSettings(data_dir=prepared, database_url=None)
        setup["service_settings"] = {
            name: getattr(defaults, name)
            for name in ("batch_max", "batch_wait_ms", "regions", "sscd_model", "log_level")
        }
        setup["screener_env"] = {
            k: v
            for k, v in server_env(prepared, True).items()
            if k.startswith("SCREENER_") and k not in OWN_VARIABLES
        }
        ran = run_modes(
            prepared,
            scratch,
            key,
            queries,
            host=host,
            concurrency=levels,
            requests=requests,
            duration=duration,
            warmup=warmup,
            timeout=timeout,
            start_timeout=start_timeout,
        )
    modes = {name: mode.report for name, mode in ran.items()}
    decisions: dict[str, Any] = {}
    seen: dict[str, dict[int, set[str]]] = {}
    for name, mode in ran.items():
        decisions[name], seen[name] = _decision_summary(queries, mode.outcomes)
    both = set(seen["off"]) & set(seen["on"])
    decisions["queries_seen_in_both"] = len(both)
    decisions["queries_decided_differently"] = sorted(
        queries[i].name for i in both if seen["off"][i] != seen["on"][i]
    )
    decisions["queries_inconsistent_within_a_mode"] = sorted(
        queries[i].name for s in seen.values() for i, d in s.items() if len(d) > 1
    )
    comparison = []
    for off, on in zip(modes["off"]["levels"], modes["on"]["levels"], strict=True):
        comparison.append(
            {
                "concurrency": off["concurrency"],
                "throughput_on_over_off": _ratio(on["throughput_rps"], off["throughput_rps"]),
                "p50_on_over_off": _ratio(on["p50_ms"], off["p50_ms"]),
                "p99_on_over_off": _ratio(on["p99_ms"], off["p99_ms"]),
            }
        )
    report: dict[str, Any] = {
        "benchmark": "http",
        "command": command,
        "machine": info,
        "config": {
            "works": works,
            "queries": queries_count,
            "requests_per_level": requests,
            "duration_s_per_level": duration,
            "concurrency": levels,
            "warmup_requests": warmup,
            "seed": seed,
            "host": host,
            "request_timeout_s": timeout,
            "images_per_request": 1,
            "schedule": "both servers up; each level runs on both back to back, the order "
            "alternating from level to level",
        },
        "setup": setup,
        "modes": modes,
        "batching_on_vs_off": comparison,
        "decisions": decisions,
        "machine_load": load_summary(modes),
        "errors_total": sum(e["errors"] for m in modes.values() for e in m["levels"])
        + sum(m["warmup"]["errors"] for m in modes.values()),
        "notes": (
            "Client and server share the machine's cores; other_processes_cores_busy is the "
            "CPU every other process used during a level (from /proc/stat), and the load "
            "averages include this benchmark's own server and client."
        ),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", report)
    _plot(report, out / "http_load.png")
    return report


def command(
    works: Annotated[int, typer.Option(help="generated works registered")] = 20,
    queries: Annotated[
        int, typer.Option(help="distinct query images (half copies, half unrelated)")
    ] = 40,
    requests: Annotated[int, typer.Option(help="most requests per concurrency level")] = 300,
    duration: Annotated[float, typer.Option(help="most seconds per concurrency level")] = 30.0,
    concurrency: Annotated[
        str, typer.Option(help="comma-separated numbers of concurrent clients")
    ] = ",".join(map(str, DEFAULT_CONCURRENCY)),
    warmup: Annotated[int, typer.Option(help="untimed requests after start-up")] = 16,
    seed: Annotated[int, typer.Option(help="draws the works, the edits and the queries")] = 0,
    host: Annotated[str, typer.Option(help="loopback address to serve on")] = "127.0.0.1",
    timeout: Annotated[
        float, typer.Option(help="seconds before a request counts as failed")
    ] = 120.0,
    out: Annotated[Path, typer.Option(help="where results.json and the plot go")] = DEFAULT_OUT,
) -> None:
    """Throughput, latency and errors of `screener serve` on loopback, batching off and on."""
    try:
        levels = [int(c) for c in concurrency.split(",") if c.strip()]
        report = run(
            works=works,
            queries_count=queries,
            requests=requests,
            duration=duration,
            concurrency=levels,
            warmup=warmup,
            seed=seed,
            host=host,
            timeout=timeout,
            out=out,
            command=" ".join(sys.argv),
        )
    except (ValueError, RuntimeError) as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    console = Console(width=max(Console().width, 140))
    print_summary(report, console)
    console.print(f"wrote {out / 'results.json'} and {out / 'http_load.png'}", highlight=False)
    if report["errors_total"]:
        raise typer.Exit(1)
