"""Choosing the cheapest setting and structure per size, and the targets of the issue."""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np

from screener.bench.lookup_data import (
    BINARY_SPEEDUP_TARGET,
    DENSE_SPEEDUP_TARGET,
    LATENCY_BUDGET_MS,
    MEMORY_RATIO_TARGET,
    RECALL_TARGET,
)
from screener.index import choose_structure

# -- choosing ---------------------------------------------------------------------------------


def _cheapest(structure: dict[str, Any]) -> dict[str, Any] | None:
    """The cheapest setting reaching the recall target on near-duplicates, else the best one."""
    if structure.get("status") != "ok":
        return None
    settings: list[dict[str, Any]] = structure["settings"]
    reaching = [s for s in settings if _near_recall(s) >= RECALL_TARGET]
    if reaching:
        return min(reaching, key=lambda s: (s["value"] or 0, s["latency"]["p50_ms"]))
    return max(settings, key=_near_recall)


def _near_recall(setting: dict[str, Any]) -> float:
    recall = setting["recall"]["near"]
    value = recall.get("at1", recall.get("radius"))
    return float(value) if value is not None and not math.isnan(value) else 0.0


def _add_ratios(structures: dict[str, dict[str, Any]], baseline: str) -> None:
    base = structures.get(baseline)
    if not base or base.get("status") != "ok":
        return
    b = base["settings"][0]
    for entry in structures.values():
        for s in entry.get("settings", []):
            lat = s["latency"]
            s["vs_baseline"] = {
                "baseline": baseline,
                "speedup_p50": b["latency"]["p50_ms"] / lat["p50_ms"],
                "speedup_p99": b["latency"]["p99_ms"] / lat["p99_ms"],
                "throughput_ratio": s["throughput"]["qps"] / b["throughput"]["qps"],
            }
        chosen = _cheapest(entry)
        if chosen is not None:
            entry["chosen"] = {"param": chosen["param"], "value": chosen["value"]}


def _chosen_setting(entry: dict[str, Any]) -> dict[str, Any] | None:
    chosen = entry.get("chosen")
    if chosen is None:
        return None
    for s in entry["settings"]:
        if s["param"] == chosen["param"] and s["value"] == chosen["value"]:
            return dict(s)
    return None


def best_approximate(
    structures: dict[str, dict[str, Any]], baseline: str
) -> tuple[str, dict[str, Any]] | None:
    """The approximate structure (at its cheapest good setting) with the lowest p99."""
    best: tuple[str, dict[str, Any]] | None = None
    for name, entry in structures.items():
        if name == baseline:
            continue
        s = _chosen_setting(entry)
        if s is None:
            continue
        key = (-int(_near_recall(s) >= RECALL_TARGET), s["latency"]["p99_ms"])
        if best is None or key < (
            -int(_near_recall(best[1]) >= RECALL_TARGET),
            best[1]["latency"]["p99_ms"],
        ):
            best = (name, s)
    return best


def recommend_dense(structures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Flat while its p99 meets the budget, else the best approximate structure."""
    flat = _chosen_setting(structures.get("Flat", {}))
    approx = best_approximate(structures, "Flat")
    if flat is not None and flat["latency"]["p99_ms"] <= LATENCY_BUDGET_MS:
        return {"structure": "Flat", "params": {}, "why": "exact flat p99 within the budget"}
    if approx is None:
        return {"structure": "Flat", "params": {}, "why": "no approximate structure measured"}
    name, s = approx
    why = "flat p99 over the budget; lowest-p99 approximate structure reaching recall@1 >= 0.99"
    if _near_recall(s) < RECALL_TARGET:
        why = "flat p99 over the budget; NO approximate structure reached recall@1 >= 0.99"
    return {"structure": name, "params": {s["param"]: s["value"]}, "why": why}


def recommend_binary(structures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A multi-hash only when exact and at least 1.5x faster (p50) than the flat scan."""
    approx = best_approximate(structures, "BFlat")
    if approx is not None:
        name, s = approx
        ratio = s.get("vs_baseline", {}).get("speedup_p50", 0.0)
        if _near_recall(s) >= 1.0 and ratio >= BINARY_SPEEDUP_TARGET:
            return {"structure": name, "params": {}, "why": f"exact and {ratio:.1f}x BFlat (p50)"}
    return {"structure": "BFlat", "params": {}, "why": "no multi-hash was exact and 1.5x faster"}


def _flat_crossover(sizes: dict[str, Any]) -> float | None:
    """N at which the flat scan's p99 reaches the budget, fitting p99 = a * N^b over sizes."""
    points = []
    for size, entry in sizes.items():
        flat = _chosen_setting(entry["dense"]["structures"].get("Flat", {}))
        if flat is not None:
            points.append((int(size), flat["latency"]["p99_ms"]))
    if len(points) < 2:
        return None
    x = np.log([p[0] for p in points])
    y = np.log([p[1] for p in points])
    b, a = np.polyfit(x, y, 1)
    if b <= 0:
        return None
    return float(math.exp((math.log(LATENCY_BUDGET_MS) - a) / b))


def _targets(sizes: dict[str, Any]) -> list[dict[str, Any]]:
    size = max(sizes, key=int)
    dense = sizes[size]["dense"]["structures"]
    binary = sizes[size]["binary"]["structures"]
    targets: list[dict[str, Any]] = []

    def target(
        name: str,
        structure: str,
        setting: dict[str, Any] | None,
        measured: float,
        op: str,
        threshold: float,
    ) -> None:
        ok = measured <= threshold if op == "<=" else measured >= threshold
        targets.append(
            {
                "name": name,
                "size": int(size),
                "structure": structure,
                "setting": None if setting is None else {k: setting[k] for k in ("param", "value")},
                "measured": measured,
                "op": op,
                "threshold": threshold,
                "result": "PASS" if ok and not math.isnan(measured) else "FAIL",
            }
        )

    def unmeasured(name: str, note: str) -> None:
        targets.append(
            {"name": name, "size": int(size), "result": "FAIL", "measured": None, "note": note}
        )

    approx = best_approximate(dense, "Flat")
    if approx is None:
        unmeasured("dense approximate lookup", "no approximate dense structure was measured")
    else:
        name, s = approx
        speed = s.get("vs_baseline", {}).get("speedup_p50", float("nan"))
        target(
            "dense approximate p99 latency (ms)",
            name,
            s,
            s["latency"]["p99_ms"],
            "<=",
            LATENCY_BUDGET_MS,
        )
        target(
            "dense approximate recall@1 on near-duplicates",
            name,
            s,
            _near_recall(s),
            ">=",
            RECALL_TARGET,
        )
        target(
            "dense approximate speed-up vs Flat (p50)", name, s, speed, ">=", DENSE_SPEEDUP_TARGET
        )
        target(
            "dense approximate index memory / raw vector bytes",
            name,
            s,
            dense[name]["memory"]["ratio_to_raw"],
            "<=",
            MEMORY_RATIO_TARGET,
        )
    bapprox = best_approximate(binary, "BFlat")
    if bapprox is None:
        unmeasured("binary multi-hash lookup", "no multi-hash structure was measured")
    else:
        name, s = bapprox
        target(
            "binary radius-31 recall (all queries)",
            name,
            s,
            s["recall"]["all"]["radius"],
            ">=",
            1.0,
        )
        target(
            "binary speed-up vs BFlat (p50)",
            name,
            s,
            s.get("vs_baseline", {}).get("speedup_p50", float("nan")),
            ">=",
            BINARY_SPEEDUP_TARGET,
        )
        target(
            "binary index memory / raw code bytes",
            name,
            s,
            binary[name]["memory"]["ratio_to_raw"],
            "<=",
            MEMORY_RATIO_TARGET,
        )
    return targets


def choose_structure_advice(sizes: dict[str, Any], recommended: dict[str, Any]) -> dict[str, Any]:
    """What the numbers say about ``index.choose_structure``'s keyword defaults."""
    ordered = sorted(recommended, key=int)
    flat_sizes = [int(s) for s in ordered if recommended[s]["dense"]["structure"] == "Flat"]
    approx_sizes = [int(s) for s in ordered if recommended[s]["dense"]["structure"] != "Flat"]
    dense_approx = next(
        (
            recommended[s]["dense"]["structure"]
            for s in reversed(ordered)
            if recommended[s]["dense"]["structure"] != "Flat"
        ),
        None,
    )
    binary_approx = next(
        (
            recommended[s]["binary"]["structure"]
            for s in reversed(ordered)
            if recommended[s]["binary"]["structure"] != "BFlat"
        ),
        None,
    )
    crossover = _flat_crossover(sizes)
    defaults = inspect.signature(choose_structure).parameters
    current = {
        name: defaults[name].default for name in ("approx_above", "dense_approx", "binary_approx")
    }
    above = int(current["approx_above"])
    lo = max(flat_sizes, default=0)
    hi = min(approx_sizes, default=None)
    consistent = lo <= above and (hi is None or above < hi)
    return {
        "current_defaults": current,
        "largest_size_recommending_flat": lo or None,
        "smallest_size_recommending_approximate": hi,
        "flat_p99_reaches_budget_at_n": crossover,
        "approx_above_consistent": consistent,
        "dense_approx_measured_best": dense_approx,
        "binary_approx_measured_best": binary_approx,
    }
