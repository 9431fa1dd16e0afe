"""``screener bench peers``: the peer images' screening protocol, measured and reported.

The protocol of ``../shared/data/peers/README.md``: two works registered from one image
each, then every listed query screened with the default settings. The tests assert it;
this reports every query's decision and signal values, for the README and for operators
comparing policies. The peer images are read in place and never used for tuning.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from screener.bench.common import machine, write_json
from screener.core.errors import DecodeError
from screener.core.settings import Settings
from screener.matching.pipeline import Screener

DEFAULT_PEERS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "peers"
WORKS = {
    "bridge": "threatexchange-pdq/bridge-mods/aaa-orig.jpg",
    "ukbench00120": "imagededup/mixed_images/ukbench00120.jpg",
}
COPIES = {
    "bridge": [
        "threatexchange-pdq/bridge-mods/*.jpg",
        "threatexchange-pdq/reg-test-input/dih/*.jpg",
    ],
    "ukbench00120": [
        "imagededup/mixed_images/ukbench00120_*.jpg",
        "imagededup/ukbench00120_gray.jpg",
        "imagededup/base_images/ukbench00120.jpg",
    ],
}
UNRELATED = [
    "imagededup/base_images/*.jpg",
    "threatexchange-pdq/reg-test-input/labelme-subset/*.jpg",
    "imagededup/formats_images/*",
]


def run(peers: Path, out: Path, command: str = "") -> dict[str, Any]:
    if not peers.is_dir():
        raise ValueError(f"peer images not found at {peers}")
    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="screener-peers-") as scratch,
        Screener(Settings(data_dir=Path(scratch))) as screener,
    ):
        for work_id, relative in WORKS.items():
            screener.registry.register(work_id, [peers / relative])
        queries: list[tuple[Path, str | None]] = [
            (p, w) for w, globs in COPIES.items() for g in globs for p in sorted(peers.glob(g))
        ]
        queries += [
            (p, None)
            for g in UNRELATED
            for p in sorted(peers.glob(g))
            if p.name != "ukbench00120.jpg"
        ]
        for path, expected in queries:
            row: dict[str, Any] = {"query": str(path.relative_to(peers)), "expected": expected}
            try:
                verdict = screener.check(path)
            except DecodeError as exc:
                row.update(error=exc.code, message=str(exc))
                rows.append(row)
                continue
            best = (verdict.matches or verdict.near_misses or (None,))[0]
            row.update(
                decision=verdict.decision,
                top_work_id=verdict.top_work_id,
                fused_score=verdict.fused_score,
                signals=dict(best.signals) if best else {},
                correct=(verdict.top_work_id == expected and verdict.decision != "allow")
                if expected
                else verdict.decision == "allow",
            )
            rows.append(row)
        policy = screener.policy.version
    copies = [r for r in rows if r["expected"] and "decision" in r]
    unrelated = [r for r in rows if not r["expected"] and "decision" in r]
    report = {
        "benchmark": "peers",
        "command": command,
        "machine": machine(),
        "policy_version": policy,
        "copies_caught": f"{sum(r['correct'] for r in copies)}/{len(copies)}",
        "copies_blocked": f"{sum(r['decision'] == 'block' for r in copies)}/{len(copies)}",
        "unrelated_allowed": f"{sum(r['correct'] for r in unrelated)}/{len(unrelated)}",
        "errors": [r["query"] for r in rows if "error" in r],
        "queries": rows,
    }
    write_json(out / "peers.json", report)
    return report


def command(
    peers: Annotated[Path, typer.Option(help="the peer images folder")] = DEFAULT_PEERS,
    out: Annotated[Path, typer.Option(help="where the JSON goes")] = Path(
        "benchmarks/results/peers"
    ),
) -> None:
    """The peer images' screening protocol: every query's decision and signals."""
    try:
        report = run(peers, out, command=" ".join(sys.argv))
    except ValueError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    Console().print(
        f"copies caught {report['copies_caught']} (blocked {report['copies_blocked']}), "
        f"unrelated allowed {report['unrelated_allowed']}, refused as unsupported or "
        f"corrupt: {len(report['errors'])} (policy {report['policy_version']})",
        highlight=False,
    )
