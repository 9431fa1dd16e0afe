"""``screener bench lookup``: how fast and how exact each index structure is, by size.

Dense 512-d inner-product indexes (``Flat``, ``HNSW<M>``, ``IVF<n>,Flat`` and the compressed
``IVF<n>,SQ8``) and 256-bit binary indexes (``BFlat``, ``BMIH<nhash>``) are built through
the ``index`` package, exactly as the service builds them, over seeded synthetic data that
is clustered like real fingerprints (independent Gaussian vectors make every neighbour
equally far and every approximate structure look bad, so they are never used here).

For each size and structure it reports build time, memory per reference (the size of the
saved index file, which is what the service keeps in memory, and the process RSS growth),
one-query-at-a-time p50/p99 latency after warm-up, batched throughput, and recall against
an exact search done independently in numpy: recall@1 and recall@10 for dense k-NN, the
share of true radius-31 neighbours found for binary. Near-duplicate and fresh queries are
scored separately. Approximate structures are swept over their search knob (``ef_search``,
``nprobe``, ``nhash``) and the cheapest setting reaching recall@1 >= 0.99 on near-duplicates
is reported.

The machine is shared and noisy, so every speed is also reported as a ratio to the exact
flat baseline measured in the same run; the targets of the issue are checked here (PASS or
FAIL with the measured value), never by timed assertions in tests. The recommended
structure per size, and hence the defaults of :func:`index.choose_structure`, come from the
JSON this writes (``benchmarks/results/lookup/lookup.json``).
"""

from __future__ import annotations

import gc
import shlex
import sys
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
import typer

from screener.bench.common import machine, stopwatch, write_json
from screener.bench.lookup_choose import (
    _add_ratios,
    _targets,
    best_approximate,
    choose_structure_advice,
    recommend_binary,
    recommend_dense,
)
from screener.bench.lookup_data import (
    BINARY_SPEEDUP_TARGET,
    BITS,
    DEFAULT_OUT,
    DENSE_SPEEDUP_TARGET,
    DIM,
    F32,
    F64,
    FAMILY_FLIPS,
    I64,
    ISOTROPIC,
    LATENCY_BUDGET_MS,
    MEMORY_RATIO_TARGET,
    NEAR_COSINE,
    NOISE_RANK,
    RADIUS,
    RECALL_TARGET,
    SPREAD,
    SUPER_SHARE,
    U8,
    ZIPF,
    BinaryData,
    Bools,
    Config,
    DenseData,
    K,
    _log,
    binary_dataset,
    dense_dataset,
    exact_dense_topk,
    exact_hamming_within,
    nlist_for,
    quick_config,
)
from screener.bench.lookup_milvus import (
    MILVUS_BINARY,
    MILVUS_DENSE,
    MilvusRun,
    _bench_milvus_size,
    milvus_for,
    milvus_storage,
)
from screener.bench.lookup_report import plot, print_report
from screener.bench.lookup_runners import (
    Built,
    _bench_binary_structure,
    _bench_dense_structure,
    _faiss_threads,
    _version,
    binary_recall,
    dense_recall,
)

__all__ = [
    "BINARY_SPEEDUP_TARGET",
    "BITS",
    "DEFAULT_OUT",
    "DENSE_SPEEDUP_TARGET",
    "DIM",
    "F32",
    "F64",
    "FAMILY_FLIPS",
    "I64",
    "ISOTROPIC",
    "LATENCY_BUDGET_MS",
    "MEMORY_RATIO_TARGET",
    "MILVUS_BINARY",
    "MILVUS_DENSE",
    "NEAR_COSINE",
    "NOISE_RANK",
    "RADIUS",
    "RECALL_TARGET",
    "SPREAD",
    "SUPER_SHARE",
    "U8",
    "ZIPF",
    "BinaryData",
    "Bools",
    "Built",
    "Config",
    "DenseData",
    "K",
    "MilvusRun",
    "best_approximate",
    "binary_dataset",
    "binary_recall",
    "choose_structure_advice",
    "command",
    "dense_dataset",
    "dense_recall",
    "exact_dense_topk",
    "exact_hamming_within",
    "milvus_for",
    "milvus_storage",
    "nlist_for",
    "plot",
    "print_report",
    "quick_config",
    "recommend_binary",
    "recommend_dense",
    "run",
]


# -- running ----------------------------------------------------------------------------------


def _each_structure(
    names: Iterable[str], bench: Callable[[str], dict[str, Any]], baseline: str
) -> dict[str, dict[str, Any]]:
    """Measure each structure; one that fails is recorded as an error, not the end of the
    run. Then the ratios against ``baseline``."""
    structures: dict[str, dict[str, Any]] = {}
    for structure in names:
        try:
            structures[structure] = bench(structure)
        except (RuntimeError, ValueError, MemoryError) as e:
            _log(f"  {structure} failed: {e}")
            structures[structure] = {"structure": structure, "status": "error", "error": str(e)}
        gc.collect()
    _add_ratios(structures, baseline)
    return structures


def _bench_size(n: int, cfg: Config, milvus: MilvusRun | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    order_rng = np.random.default_rng([cfg.seed, 0x0D, n])
    order = order_rng.permutation(cfg.queries).tolist()

    _log(f"dense N={n:,}: generating {n:,} references and {cfg.queries} queries")
    with stopwatch() as t:
        data = dense_dataset(n, cfg.queries, cfg.seed)
    _log(f"  generated in {t[0]:.1f}s ({data.clusters} clusters); exact search in numpy")
    with stopwatch() as t_truth:
        _, truth = exact_dense_topk(data.refs, data.queries, K)
    _log(f"  exact top-{K} in {t_truth[0]:.1f}s")
    nlist = nlist_for(n, cfg.ivf_lists_factor)
    structures = _each_structure(
        (template.replace("{nlist}", str(nlist)) for template in cfg.dense),
        partial(_bench_dense_structure, data=data, truth=truth, cfg=cfg, order=order),
        "Flat",
    )
    milvus_dense = None
    if milvus is not None and "Flat" in structures:
        milvus_dense = (data, truth, structures["Flat"])
        out["milvus"] = _bench_milvus_size(n, cfg, milvus, milvus_dense, None, order)
    out["dense"] = {
        "baseline": "Flat",
        "raw_bytes_per_ref": DIM * 4,
        "nlist": nlist,
        "data": _dense_data_stats(data, truth, t[0], t_truth[0]),
        "structures": structures,
    }
    del data, truth, milvus_dense
    gc.collect()

    _log(f"binary N={n:,}: generating codes and queries")
    with stopwatch() as t:
        bdata = binary_dataset(n, cfg.queries, cfg.seed)
    with stopwatch() as t_truth:
        within, nearest = exact_hamming_within(bdata.refs, bdata.queries, RADIUS)
    _log(f"  generated in {t[0]:.1f}s, exact radius-{RADIUS} answers in {t_truth[0]:.1f}s")
    bstructures = _each_structure(
        cfg.binary,
        partial(_bench_binary_structure, data=bdata, truth=within, cfg=cfg, order=order),
        "BFlat",
    )
    if milvus is not None and "BFlat" in bstructures:
        binary = (bdata, within, bstructures["BFlat"])
        found = _bench_milvus_size(n, cfg, milvus, None, binary, order)
        out.setdefault("milvus", {"uri": found["uri"]}).update(binary=found["binary"])
    out["binary"] = {
        "baseline": "BFlat",
        "radius": RADIUS,
        "raw_bytes_per_ref": BITS // 8,
        "data": _binary_data_stats(bdata, within, nearest, t[0], t_truth[0]),
        "structures": bstructures,
    }
    return out


def _pcts(values: npt.NDArray[Any]) -> dict[str, float]:
    if len(values) == 0:
        return {}
    p = np.percentile(values, [5, 50, 95])
    return {"p5": float(p[0]), "p50": float(p[1]), "p95": float(p[2])}


def _dense_data_stats(data: DenseData, truth: F32, gen_s: float, truth_s: float) -> dict[str, Any]:
    near = data.near
    src = data.source[near]
    return {
        "clusters": data.clusters,
        "generate_seconds": gen_s,
        "exact_search_seconds": truth_s,
        "near_cosine_to_source": _pcts(np.einsum("ij,ij->i", data.queries[near], data.refs[src])),
        "near_top1_cosine": _pcts(truth[near, 0]),
        "near_second_cosine": _pcts(truth[near, 1]) if truth.shape[1] > 1 else {},
        "fresh_top1_cosine": _pcts(truth[~near, 0]),
        "fresh_top10_cosine": _pcts(truth[~near, -1]),
    }


def _binary_data_stats(
    data: BinaryData, within: list[I64], nearest: I64, gen_s: float, truth_s: float
) -> dict[str, Any]:
    counts = np.array([len(w) for w in within])
    return {
        "families": data.clusters,
        "generate_seconds": gen_s,
        "exact_search_seconds": truth_s,
        "near_flips": _pcts(data.flips[data.near]),
        "near_neighbours_within_radius": _pcts(counts[data.near]),
        "fresh_neighbours_within_radius": _pcts(counts[~data.near]),
        "fresh_nearest_distance": _pcts(nearest[~data.near]),
    }


def run(cfg: Config) -> dict[str, Any]:
    """Run the benchmark, write ``lookup.json`` and the plots into ``cfg.out``; return the JSON."""
    started = time.perf_counter()
    info = machine()
    info["faiss_threads"] = _faiss_threads()
    _log(
        f"machine: {info['cpu']} ({info['cores']} cores, faiss threads {info['faiss_threads']}); "
        f"numpy {info['libraries'].get('numpy')}, faiss {info['libraries'].get('faiss-cpu')}"
    )
    sizes: dict[str, Any] = {}
    with milvus_for(cfg) as milvus:
        if milvus is not None:
            info["libraries"]["milvus"] = _version("milvus")
            info["libraries"]["pymilvus"] = _version("pymilvus")
        for n in cfg.sizes:
            sizes[str(n)] = _bench_size(n, cfg, milvus)
    recommended = {
        size: {
            "dense": recommend_dense(entry["dense"]["structures"]),
            "binary": recommend_binary(entry["binary"]["structures"]),
        }
        for size, entry in sizes.items()
    }
    payload: dict[str, Any] = {
        "benchmark": "lookup",
        "command": cfg.command,
        "argv": sys.argv,
        "machine": info,
        "config": cfg.to_json(),
        "budgets": {
            "latency_p99_ms": LATENCY_BUDGET_MS,
            "recall_at1": RECALL_TARGET,
            "dense_speedup": DENSE_SPEEDUP_TARGET,
            "binary_speedup": BINARY_SPEEDUP_TARGET,
            "memory_ratio": MEMORY_RATIO_TARGET,
        },
        "sizes": sizes,
        "targets": _targets(sizes),
        "recommended": recommended,
        "choose_structure": choose_structure_advice(sizes, recommended),
        "seconds": time.perf_counter() - started,
    }
    cfg.out.mkdir(parents=True, exist_ok=True)
    payload["plots"] = plot(payload, cfg.out)
    write_json(cfg.out / "lookup.json", payload)
    _log(f"wrote {cfg.out / 'lookup.json'} after {payload['seconds']:.0f}s")
    return payload


# -- command line -----------------------------------------------------------------------------


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(";") if part.strip())


def command(
    sizes: Annotated[
        str, typer.Option(help="comma-separated numbers of references")
    ] = "10000,100000,1000000",
    queries: Annotated[int, typer.Option(help="queries per size (half near-duplicates)")] = 1000,
    seed: Annotated[int, typer.Option(help="seed of every generator")] = 0,
    out: Annotated[Path, typer.Option(help="folder for lookup.json and the plots")] = DEFAULT_OUT,
    quick: Annotated[bool, typer.Option(help="tiny sweeps and time budgets (tests)")] = False,
    dense: Annotated[
        str, typer.Option(help="';'-separated dense structures; {nlist} = 2*sqrt(N)")
    ] = ";".join(Config.dense),
    binary: Annotated[str, typer.Option(help="';'-separated binary structures")] = ";".join(
        Config.binary
    ),
    ef_search: Annotated[str | None, typer.Option(help="HNSW efSearch sweep")] = None,
    nprobe: Annotated[str | None, typer.Option(help="IVF nprobe sweep")] = None,
    ef_construction: Annotated[int, typer.Option(help="HNSW efConstruction")] = 80,
    max_build_s: Annotated[
        float | None, typer.Option(help="give up on an index whose build runs longer")
    ] = None,
    milvus: Annotated[
        str,
        typer.Option(
            help="';'-separated Milvus index types to measure too (FLAT, HNSW, IVF_FLAT, "
            "BIN_FLAT, BIN_IVF_FLAT), against the faiss Flat/BFlat of the same run"
        ),
    ] = "",
    milvus_uri: Annotated[
        str | None,
        typer.Option(help="a running Milvus to use; default: start one from the milvus wheel"),
    ] = None,
) -> None:
    """Benchmark index lookup: latency, throughput, memory and recall per structure and size."""
    options = [
        f"--sizes {sizes}",
        f"--queries {queries}",
        f"--seed {seed}",
        f"--out {out}",
        f"--dense {shlex.quote(dense)}",
        f"--binary {shlex.quote(binary)}",
        f"--ef-construction {ef_construction}",
    ]
    overrides: dict[str, Any] = {
        "sizes": _ints(sizes),
        "queries": queries,
        "seed": seed,
        "out": Path(out),
        "dense": _names(dense),
        "binary": _names(binary),
        "ef_construction": ef_construction,
    }
    if ef_search:
        overrides["ef_search"] = _ints(ef_search)
        options.append(f"--ef-search {ef_search}")
    if nprobe:
        overrides["nprobe"] = _ints(nprobe)
        options.append(f"--nprobe {nprobe}")
    if max_build_s is not None:
        overrides["max_build_s"] = max_build_s
        options.append(f"--max-build-s {max_build_s:g}")
    if milvus:
        overrides["milvus"] = _names(milvus)
        options.append(f"--milvus {shlex.quote(milvus)}")
    if milvus_uri:
        overrides["milvus_uri"] = milvus_uri
        options.append(f"--milvus-uri {milvus_uri}")
    if quick:
        options.append("--quick")
    overrides["command"] = "python -m screener.bench.lookup " + " ".join(options)
    cfg = quick_config(**overrides) if quick else Config(**overrides)
    payload = run(cfg)
    print_report(payload)


if __name__ == "__main__":
    typer.run(command)
