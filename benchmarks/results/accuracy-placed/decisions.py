"""The shipped policy's own decisions, per category, in two saved report record files of
the same suite (the check without and with the placed region): the share of copies held
(blocked or reviewed) and blocked with the right work named, and of unrelated images
(look-alikes and others, per domain) blocked and reviewed.

    python benchmarks/results/accuracy-placed/decisions.py OFF.json.gz ON.json.gz
"""

from __future__ import annotations

import gzip
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any


def _records(path: Path) -> dict[str, dict[str, Any]]:
    with gzip.open(path, "rt") as handle:
        return {r["query_id"]: r for r in json.load(handle)["records"]}


def _held(record: dict[str, Any], block_only: bool) -> bool:
    named = record["top_work"] == record["truth"]
    wanted = ("block",) if block_only else ("block", "review")
    return bool(named and record["decision"] in wanted)


def main(off_path: Path, on_path: Path) -> None:
    off, on = _records(off_path), _records(on_path)
    shared = sorted(set(off) & set(on))
    by_category: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = defaultdict(list)
    unrelated: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for query_id in shared:
        before, after = off[query_id], on[query_id]
        if after["truth"]:
            by_category[after["category"]].append((before, after))
        else:
            domain = query_id.split(".", 1)[0]
            kind = "look-alikes" if ".l" in query_id else "other"
            unrelated[(domain, kind)].append((before["decision"], after["decision"]))
    print("| category | copies | held, off | held, on | blocked, off | blocked, on |")
    print("|---|---:|---:|---:|---:|---:|")
    for category, pairs in sorted(by_category.items()):
        n = len(pairs)
        cells = [
            sum(_held(p[side], block) for p in pairs) / n
            for block in (False, True)
            for side in (0, 1)
        ]
        print(f"| {category} | {n} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    print()
    print("| domain | unrelated | n | blocked, off | blocked, on | reviewed, off | reviewed, on |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (domain, kind), decisions in sorted(unrelated.items()):
        before = Counter(b for b, _ in decisions)
        after = Counter(a for _, a in decisions)
        n = len(decisions)
        print(
            f"| {domain} | {kind} | {n} | {before['block']} | {after['block']} | "
            f"{before['review']} | {after['review']} |"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
