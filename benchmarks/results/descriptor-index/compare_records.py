"""Per-category counts of two accuracy runs' records (same suite, same seed), for the
partial-copy categories: python compare_records.py BEFORE_DIR AFTER_DIR."""

from __future__ import annotations

import gzip
import json
import sys
from typing import Any

CATEGORIES = ("composite_small", "composite_medium", "collage_2x2", "crop_offset")


def records(folder: str) -> dict[str, Any]:
    found = {}
    for name in ("records-fit.json.gz", "records-report.json.gz"):
        with gzip.open(f"{folder}/{name}") as f:
            for r in json.load(f)["records"]:
                found[r["query_id"]] = r
    return found


def counts(recs: dict[str, Any], queries: list[str]) -> tuple[int, int, int, int]:
    top = sum(recs[q]["top_work"] == recs[q]["truth"] for q in queries)
    inliers = [
        dict(recs[q]["candidates"]).get(recs[q]["truth"], {}).get("local_inliers") or 0
        for q in queries
    ]
    flagged = sum(recs[q]["decision"] in ("block", "review") for q in queries)
    return top, sum(x > 0 for x in inliers), int(sum(inliers)), flagged


def main() -> None:
    before, after = records(sys.argv[1]), records(sys.argv[2])
    print(
        "| category | queries | right work on top (before / after) | truth's local_inliers > 0"
        " | sum of truth's local_inliers | blocked or flagged |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for category in CATEGORIES:
        queries = sorted(q for q, r in before.items() if r["category"] == category)
        pairs = zip(counts(before, queries), counts(after, queries), strict=True)
        cells = " | ".join(f"{b} / {a}" for b, a in pairs)
        print(f"| {category} | {len(queries)} | {cells} |")


if __name__ == "__main__":
    main()
