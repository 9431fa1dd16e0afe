"""Saved records without the copies of works that nothing could find: works whose every
reference registration held for an operator (the bench now leaves such works out and names
them; these records were screened before it did).

    python benchmarks/results/accuracy-settled/leave_out.py IN.json.gz OUT.json.gz WORK...
"""

from __future__ import annotations

import gzip
import json
import sys


def main(source: str, target: str, works: list[str]) -> None:
    with gzip.open(source, "rt") as handle:
        saved = json.load(handle)
    kept = [r for r in saved["records"] if r["truth"] not in works]
    print(f"{len(saved['records']) - len(kept)} copies of {', '.join(works)} left out")
    saved["records"] = kept
    saved["config"]["left_out"] = works
    with gzip.open(target, "wt") as handle:
        json.dump(saved, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
