"""Compare two `screener bench accuracy` runs' records (before and after a change):
per query, the decision, top work and fused score, and every candidate's values (cohort
levels included). Usage: python compare_accuracy.py BEFORE/records.json.gz AFTER/records.json.gz
"""

from __future__ import annotations

import gzip
import json
import sys
from typing import Any


def load(path: str) -> dict[str, dict[str, Any]]:
    with gzip.open(path) as handle:
        return {r["query_id"]: r for r in json.load(handle)["records"]}


def main(before_path: str, after_path: str) -> None:
    before, after = load(before_path), load(after_path)
    assert before.keys() == after.keys(), "the runs hold different queries"
    decisions = tops = 0
    fused = values = 0.0
    for qid, b in before.items():
        a = after[qid]
        decisions += b["decision"] != a["decision"]
        tops += b["top_work"] != a["top_work"]
        fused = max(fused, abs(b["fused"] - a["fused"]))
        for (bw, bv), (aw, av) in zip(b["candidates"], a["candidates"], strict=True):
            assert bw == aw, f"{qid}: candidates differ"
            for name in set(bv) | set(av):
                x, y = bv.get(name), av.get(name)
                if (x is None) != (y is None):
                    values = float("inf")
                elif x is not None:
                    values = max(values, abs(x - y))
    print(f"queries {len(before)}; decisions differing {decisions}; top works differing {tops}")
    print(f"largest fused-score difference {fused:.3g}; largest value difference {values:.3g}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
