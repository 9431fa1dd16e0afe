"""Plots and rich tables of a ``screener.bench.lookup`` payload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from screener.bench.lookup_choose import _chosen_setting, _near_recall
from screener.bench.lookup_data import LATENCY_BUDGET_MS, RADIUS, RECALL_TARGET

# -- plots ------------------------------------------------------------------------------------


def _save(fig: Any, plt: Any, title: str, fontsize: int, path: Path) -> str:
    """Title a finished figure, write it (90 dpi) and free it; its file name."""
    fig.suptitle(title, fontsize=fontsize)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name


def plot(payload: dict[str, Any], out: Path) -> list[str]:
    """``lookup_latency.png`` (p99 vs N, log-log) and ``lookup_tradeoff.png`` (recall vs p50)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    sizes = payload["sizes"]
    ns = sorted(sizes, key=int)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, kind in zip(axes, ("dense", "binary"), strict=True):
        names: list[str] = []
        for n in ns:
            for name in sizes[n][kind]["structures"]:
                if name.replace(str(sizes[n]["dense"]["nlist"]), "{nlist}") not in names:
                    names.append(name.replace(str(sizes[n]["dense"]["nlist"]), "{nlist}"))
        for template in names:
            xs, ys = [], []
            label = template
            for n in ns:
                name = template.replace("{nlist}", str(sizes[n]["dense"]["nlist"]))
                s = _chosen_setting(sizes[n][kind]["structures"].get(name, {}))
                if s is not None:
                    xs.append(int(n))
                    ys.append(s["latency"]["p99_ms"])
                    if s["param"]:
                        label = f"{template} ({s['param']}={s['value']} at max N"
                        if _near_recall(s) < RECALL_TARGET:
                            label += f", recall@1 only {_near_recall(s):.3f}"
                        label += ")"
            if xs:
                ax.plot(xs, ys, marker="o", label=label.replace("{nlist}", "<2√N>"))
        ax.axhline(LATENCY_BUDGET_MS, color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("references N")
        ax.set_ylabel("single-query p99 latency (ms)")
        ax.yaxis.set_minor_formatter(NullFormatter())
        title = "dense 512-d IP, k=10" if kind == "dense" else f"binary 256-bit, radius {RADIUS}"
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    latency_png = _save(
        fig,
        plt,
        "Single-query p99 latency vs N (faiss on 1 thread); each approximate structure at its"
        " cheapest setting reaching recall@1 >= 0.99 on near-duplicates, else its best",
        9,
        out / "lookup_latency.png",
    )

    fig, axes_any = plt.subplots(1, len(ns), figsize=(4.2 * len(ns), 4.0), squeeze=False)
    for ax, n in zip(axes_any[0], ns, strict=True):
        for name, entry in sizes[n]["dense"]["structures"].items():
            if entry.get("status") != "ok":
                continue
            xs = [s["latency"]["p50_ms"] for s in entry["settings"]]
            near = [s["recall"]["near"]["at1"] for s in entry["settings"]]
            fresh = [s["recall"]["fresh"]["at1"] for s in entry["settings"]]
            (line,) = ax.plot(xs, near, marker="o", label=f"{name} near-dup")
            ax.plot(
                xs, fresh, marker="x", linestyle=":", color=line.get_color(), label=f"{name} fresh"
            )
            for x, y, s in zip(xs, near, entry["settings"], strict=True):
                if s["value"] is not None:
                    ax.annotate(
                        str(s["value"]),
                        (x, y),
                        fontsize=6,
                        xytext=(2, 2),
                        textcoords="offset points",
                    )
        ax.axhline(RECALL_TARGET, color="grey", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("single-query p50 latency (ms)")
        ax.set_ylabel("recall@1")
        ax.set_title(f"dense N={int(n):,}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    title = "recall@1 vs latency (labels: ef_search / nprobe)"
    made = [latency_png, _save(fig, plt, title, 10, out / "lookup_tradeoff.png")]
    with_milvus = [n for n in ns if "milvus" in sizes[n]]
    if with_milvus:
        made.append(_plot_milvus(sizes[with_milvus[-1]], int(with_milvus[-1]), out, plt))
    return made


def _milvus_rows(size: dict[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, chosen setting) of the faiss baseline and each Milvus structure of ``kind``."""
    section = size.get("milvus", {}).get(kind)
    if not section:
        return []
    baseline = section["baseline"]
    rows = []
    for name, entry in [
        (baseline, size[kind]["structures"][baseline]),
        *section["structures"].items(),
    ]:
        s = _chosen_setting(entry)
        if s is not None:
            rows.append((name, s))
    return rows


def _plot_milvus(size: dict[str, Any], n: int, out: Path, plt: Any) -> str:
    """``lookup_milvus.png``: p50 and p95 of each Milvus structure beside the faiss baseline."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0))
    for ax, kind in zip(axes, ("dense", "binary"), strict=True):
        rows = _milvus_rows(size, kind)
        labels = [f"{name}\n{s['param']}={s['value']}" if s["param"] else name for name, s in rows]
        xs = np.arange(len(rows))
        p50 = [s["latency"]["p50_ms"] for _, s in rows]
        p95 = [s["latency"]["p95_ms"] for _, s in rows]
        ax.bar(xs - 0.2, p50, width=0.4, label="p50")
        ax.bar(xs + 0.2, p95, width=0.4, label="p95")
        ax.set_xticks(xs, labels, fontsize=7)
        ax.set_ylabel("single-query latency (ms)")
        title = "dense 512-d IP, k=10" if kind == "dense" else f"binary 256-bit, radius {RADIUS}"
        ax.set_title(f"{title}, N={n:,}")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    return _save(
        fig,
        plt,
        "Milvus (standalone, one query per call over gRPC) against faiss in-process (1 thread)",
        9,
        out / "lookup_milvus.png",
    )


def print_report(payload: dict[str, Any]) -> None:
    """Rich tables: each structure at its chosen setting per size, then the targets."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 170))
    table = Table(title="Lookup (each structure at its cheapest setting with recall@1 >= 0.99)")
    for column in (
        "N",
        "structure",
        "setting",
        "build s",
        "B/ref",
        "mem x",
        "p50 ms",
        "p99 ms",
        "q/s",
        "R@1 near",
        "R@1 fresh",
        "R@10 near",
        "R@10 fresh",
        "x base p50",
    ):
        table.add_column(column, justify="right" if column not in ("structure",) else "left")
    for size, entry in payload["sizes"].items():
        for kind in ("dense", "binary"):
            for name, st in entry[kind]["structures"].items():
                s = _chosen_setting(st)
                if s is None:
                    table.add_row(f"{int(size):,}", name, st.get("status", "?"), *[""] * 11)
                    continue
                rec = s["recall"]
                if kind == "dense":
                    recalls = [
                        f"{rec['near']['at1']:.4f}",
                        f"{rec['fresh']['at1']:.4f}",
                        f"{rec['near']['at10']:.4f}",
                        f"{rec['fresh']['at10']:.4f}",
                    ]
                else:
                    recalls = [
                        f"r31 {rec['near']['radius']:.4f}",
                        f"r31 {rec['fresh']['radius']:.4f}",
                        "",
                        "",
                    ]
                setting = f"{s['param']}={s['value']}" if s["param"] else "-"
                table.add_row(
                    f"{int(size):,}",
                    name,
                    setting,
                    f"{st['build']['seconds']:.1f}",
                    f"{st['memory']['bytes_per_ref']:.0f}",
                    f"{st['memory']['ratio_to_raw']:.2f}",
                    f"{s['latency']['p50_ms']:.3f}",
                    f"{s['latency']['p99_ms']:.3f}",
                    f"{s['throughput']['qps']:.0f}",
                    *recalls,
                    f"{s.get('vs_baseline', {}).get('speedup_p50', float('nan')):.1f}",
                )
    console.print(table)
    targets = Table(title="Targets (at the largest size run)")
    for column in ("target", "N", "structure", "measured", "threshold", "result"):
        targets.add_column(column)
    for t in payload["targets"]:
        measured = t.get("measured")
        targets.add_row(
            t["name"],
            f"{t['size']:,}",
            str(t.get("structure", "")),
            "n/a" if measured is None else f"{measured:.4g}",
            f"{t.get('op', '')} {t.get('threshold', '')}",
            t["result"],
        )
    console.print(targets)
    _print_milvus(payload, console)
    for size, rec in payload["recommended"].items():
        console.print(
            f"N={int(size):,}: dense -> {rec['dense']['structure']} {rec['dense']['params']} "
            f"({rec['dense']['why']}); binary -> {rec['binary']['structure']}"
        )


def _print_milvus(payload: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    sizes = {n: e for n, e in payload["sizes"].items() if "milvus" in e}
    if not sizes:
        return
    table = Table(title="Milvus against the faiss baseline of the same run (x: ratio to it)")
    for column in (
        "N",
        "structure",
        "setting",
        "build s",
        "build x",
        "B/ref",
        "mem x",
        "p50 ms",
        "p95 ms",
        "p50 x",
        "q/s",
        "recall near / fresh",
    ):
        table.add_column(column, justify="left" if column == "structure" else "right")
    for n, size in sizes.items():
        for kind in ("dense", "binary"):
            section = size["milvus"].get(kind, {})
            for name, s in _milvus_rows(size, kind):
                entry = section["structures"].get(name) or size[kind]["structures"][name]
                vs = entry.get("vs_baseline", {})
                rec = s["recall"]
                recall = (
                    f"R@1 {rec['near']['at1']:.3f} / {rec['fresh']['at1']:.3f}"
                    if kind == "dense"
                    else f"r31 {rec['near']['radius']:.3f} / {rec['fresh']['radius']:.3f}"
                )
                table.add_row(
                    f"{int(n):,}",
                    name,
                    f"{s['param']}={s['value']}" if s["param"] else "-",
                    f"{entry['build']['seconds']:.1f}",
                    f"{vs.get('build_seconds_ratio', 1.0):.1f}",
                    f"{entry['memory']['bytes_per_ref']:.0f}",
                    f"{vs.get('memory_ratio', 1.0):.2f}",
                    f"{s['latency']['p50_ms']:.2f}",
                    f"{s['latency']['p95_ms']:.2f}",
                    f"{1 / s.get('vs_baseline', {}).get('speedup_p50', 1.0):.2f}",
                    f"{s['throughput']['qps']:.0f}",
                    recall,
                )
    console.print(table)
