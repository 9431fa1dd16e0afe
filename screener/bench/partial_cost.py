"""Interleaved cost of the partial-copy methods on a suite's queries.

The same queries are checked alternately by the default check and by the check without
region proposals and the located region (`SCREENER_REGION_PROPOSALS`,
`SCREENER_LOCATED_REGION`), the order swapped every query, so that the load of a shared
machine falls on both alike. Prints each category's p50 and their ratio. With a third
argument, a boolean setting's name (``sscd_windows``), the default check with that
setting on is measured against the default check instead.

    python -m screener.bench.partial_cost SUITE_DIR QUERIES_PER_CATEGORY [SETTING]

``SUITE_DIR`` holds ``works/``, ``queries/`` and ``truth.csv`` (`screener.bench.partial_suite`).
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

import numpy as np

from screener import Screener, Settings


def _queries(root: Path, per_category: int) -> list[tuple[str, bytes]]:
    counts: dict[str, int] = {}
    found = []
    with (root / "truth.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            category = row["category"]
            if counts.get(category, 0) < per_category:
                counts[category] = counts.get(category, 0) + 1
                found.append((category, (root / "queries" / f"{row['query_id']}.png").read_bytes()))
    return found


def _screener(data: Path, root: Path, methods: bool, setting: str | None) -> Screener:
    if setting is None:
        settings = Settings(
            data_dir=data, region_proposals=methods, located_region=methods, placed_region=methods
        )
    else:
        settings = Settings(data_dir=data).model_copy(update={setting: methods})
    screener = Screener(settings)
    for work in sorted((root / "works").iterdir()):
        screener.registry.register(work.name, sorted(work.iterdir()))
    return screener


def measure(
    root: Path, per_category: int, setting: str | None = None
) -> dict[str, tuple[float, float, int]]:
    """Per category (and ALL): p50 ms with the methods (or ``setting`` on), without, and
    the query count."""
    queries = _queries(root, per_category)
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        screeners = {
            True: _screener(Path(a), root, True, setting),
            False: _screener(Path(b), root, False, setting),
        }
        for screener in screeners.values():
            screener.check(queries[0][1])  # warm-up
        for position, (_, query) in enumerate(queries):
            for methods in (True, False) if position % 2 == 0 else (False, True):
                times[methods].append(screeners[methods].check(query).timings_ms["total"])
        for screener in screeners.values():
            screener.close()
    categories = [c for c, _ in queries]
    out = {}
    for category in [*sorted(set(categories)), "ALL"]:
        rows = [i for i, c in enumerate(categories) if category in (c, "ALL")]
        out[category] = (
            float(np.median([times[True][i] for i in rows])),
            float(np.median([times[False][i] for i in rows])),
            len(rows),
        )
    return out


if __name__ == "__main__":
    toggled = sys.argv[3] if len(sys.argv) > 3 else None
    for name, (new, old, n) in measure(Path(sys.argv[1]), int(sys.argv[2]), toggled).items():
        print(f"{name}: p50 {new:.0f} ms with, {old:.0f} ms without, ratio {new / old:.2f} (n={n})")
