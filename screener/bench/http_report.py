"""The HTTP load benchmark's report: machine-load summary, plot and console table."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from screener.bench.http_server import MODES


def load_summary(modes: dict[str, Any]) -> dict[str, Any]:
    """How busy the rest of the machine was while the levels ran."""
    levels = [e for m in modes.values() for e in m["levels"]]
    others = [e["other_processes_cores_busy"] for e in levels if "other_processes_cores_busy" in e]
    loads = [x for e in levels for x in (e["loadavg_before"][0], e["loadavg_after"][0])]
    summary: dict[str, Any] = {
        "cores": os.cpu_count(),
        "loadavg_1min_range": [min(loads), max(loads)] if loads else None,
    }
    if others:
        summary["other_processes_cores_busy_range"] = [min(others), max(others)]
        summary["loaded"] = max(others) >= 0.25
    return summary


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def _plot(report: dict[str, Any], path: Path) -> None:
    from screener.bench.plots import pyplot

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=90)
    for name, colour in (("off", "tab:blue"), ("on", "tab:orange")):
        levels = report["modes"][name]["levels"]
        xs = [e["concurrency"] for e in levels]
        left.plot(xs, _nan([e["throughput_rps"] for e in levels]), "o-", color=colour, label=name)
        right.plot(xs, _nan([e["p99_ms"] for e in levels]), "o-", color=colour, label=f"{name} p99")
        right.plot(
            xs, _nan([e["p50_ms"] for e in levels]), "s--", color=colour, label=f"{name} p50"
        )
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(report["config"]["concurrency"], report["config"]["concurrency"])
        ax.set_xlabel("concurrent clients")
        ax.grid(alpha=0.3)
    left.set_ylim(bottom=0)
    left.set_ylabel("checks / s")
    left.set_title("throughput, micro-batching off / on")
    left.legend(title="batching")
    right.set_ylim(bottom=0)
    right.set_ylabel("latency (ms)")
    right.set_title("latency per request")
    right.legend(fontsize=8, ncol=2)
    cores = report["machine"].get("cores")
    title = f"screener serve on loopback, one image per request ({cores} cores)"
    busy = report.get("machine_load", {}).get("other_processes_cores_busy_range")
    if busy:
        title += f"; other processes busy {busy[0]:.1f}-{busy[1]:.1f} cores meanwhile"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fmt(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.0f}"


def _nan(values: Sequence[float | None]) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def print_summary(report: dict[str, Any], console: Console) -> None:
    table = Table(
        "clients",
        "off req/s",
        "off p50 / p99 ms",
        "off vs c1",
        "on req/s",
        "on p50 / p99 ms",
        "on vs c1",
        "on / off",
        "mean batch (on)",
        "errors",
        "other CPU (cores)",
        title="screener serve under load: micro-batching off / on",
    )
    for off, on, ratio in zip(
        report["modes"]["off"]["levels"],
        report["modes"]["on"]["levels"],
        report["batching_on_vs_off"],
        strict=True,
    ):
        table.add_row(
            str(off["concurrency"]),
            f"{off['throughput_rps']:.2f}",
            f"{_fmt(off['p50_ms'])} / {_fmt(off['p99_ms'])}",
            f"{off['throughput_vs_baseline']}x",
            f"{on['throughput_rps']:.2f}",
            f"{_fmt(on['p50_ms'])} / {_fmt(on['p99_ms'])}",
            f"{on['throughput_vs_baseline']}x",
            f"{ratio['throughput_on_over_off']}x",
            str(on.get("mean_batch_images", "")),
            f"{off['errors']} / {on['errors']}",
            f"{off.get('other_processes_cores_busy', '')} / "
            f"{on.get('other_processes_cores_busy', '')}",
        )
    console.print(table)
    decisions = report["decisions"]
    for name in MODES:
        d = decisions[name]
        console.print(
            f"batching {name}: copies flagged for the right work "
            f"{d['copies_flagged_right_work']}/{d['copies_checked']}, unrelated allowed "
            f"{d['unrelated_allowed']}/{d['unrelated_checked']}",
            highlight=False,
        )
    load = report.get("machine_load", {})
    if load.get("loaded"):
        low, high = load["other_processes_cores_busy_range"]
        console.print(
            f"[yellow]the machine was loaded:[/] other processes kept {low}-{high} of "
            f"{load['cores']} cores busy during the levels (1-min load average "
            f"{load['loadavg_1min_range'][0]}-{load['loadavg_1min_range'][1]})",
            highlight=False,
        )
    console.print(
        f"queries decided differently with batching on: "
        f"{len(decisions['queries_decided_differently'])} of "
        f"{decisions['queries_seen_in_both']}; errors in all: {report['errors_total']}",
        highlight=False,
    )
