"""Does a window of the query's SSCD feature map match the reference's whole-image SSCD?

Measured before the windows went into the check (issue 21): on a partial-copy suite
(`screener.bench.partial_suite`), each query's windows (`SSCD.windows`) against every
work's stored-style whole-image embedding, per category: the true work's best window
cosine, the best cosine any look-alike query reaches in that category, how often the true
work comes first, and how many true works clear every look-alike of the whole suite (0.1 %
false positives at this size), beside the same for the whole-image embedding alone.

    python -m screener.bench.featuremap_probe SUITE LONG_SIDE FRACTIONS [CATEGORIES]
"""

from __future__ import annotations

import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from screener import models
from screener.core.decode import decode_file
from screener.models.sscd import SSCD


@dataclass
class Row:
    category: str
    work: str  # "" for a look-alike
    windows: npt.NDArray[np.float32]  # best window cosine per work
    whole: npt.NDArray[np.float32]  # whole-image cosine per work


def _measure(root: Path, side: int, fractions: list[float], wanted: set[str]) -> list[Row]:
    sscd = models.create("sscd")
    assert isinstance(sscd, SSCD)
    works = sorted(p.name for p in (root / "works").iterdir())
    refs = np.stack(
        [
            sscd.fingerprint([decode_file(next((root / "works" / w).iterdir())).image])[0].vector
            for w in works
        ]
    )
    rows = []
    seconds = []
    count = 0
    with (root / "truth.csv").open() as f:
        truth = [r for r in csv.DictReader(f) if not wanted or r["category"] in wanted]
    for r in truth:
        image = decode_file(next((root / "queries").glob(r["query_id"] + ".*"))).image
        whole = sscd.fingerprint([image])[0].vector
        start = time.perf_counter()
        found = sscd.windows(image, side, fractions)[1:]
        seconds.append(time.perf_counter() - start)
        count = len(found)
        vectors = np.stack([w.fingerprint.vector for w in found])
        rows.append(Row(r["category"], r["work_id"], (vectors @ refs.T).max(0), refs @ whole))
    print(f"windows per query {count}; median seconds for the windows {np.median(seconds):.3f}")
    for row in rows:
        row.work = str(works.index(row.work)) if row.work else ""
    return rows


def report(rows: list[Row]) -> None:
    for method in ("windows", "whole"):
        negatives = [getattr(r, method).max() for r in rows if not r.work]
        threshold = max(negatives)
        print(f"== {method} (every look-alike's best: {threshold:.3f})")
        for category in dict.fromkeys(r.category for r in rows):
            mine = [r for r in rows if r.category == category]
            pos = [r for r in mine if r.work]
            true = [float(getattr(r, method)[int(r.work)]) for r in pos]
            first = [int(np.argmax(getattr(r, method))) == int(r.work) for r in pos]
            neg = max(float(getattr(r, method).max()) for r in mine if not r.work)
            found = sum(t > threshold and ok for t, ok in zip(true, first, strict=True))
            print(
                f"{category:18s} true median {np.median(true):.3f} min {min(true):.3f} | "
                f"look-alikes' best {neg:.3f} | true work first {sum(first)}/{len(pos)} | "
                f"above every look-alike {found}/{len(pos)}"
            )


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    chosen = set(sys.argv[4].split(",")) if len(sys.argv) > 4 else set()
    report(
        _measure(
            Path(sys.argv[1]), int(sys.argv[2]), [float(f) for f in sys.argv[3].split(",")], chosen
        )
    )
