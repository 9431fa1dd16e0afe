"""Part-level verification on a kept character suite: choose its parameters, and measure
what it adds per check.

``screener bench characters --keep-suite DIR`` leaves the suite's pictures behind. This
verifies every query against every registered character's references as a check does
(the 512 px work copy; a transparent reference also over black; the best reference per
work) once per :class:`~screener.models.keypoints.PartParams` variant asked for, and
reports per variant, for ``local_inliers`` (one homography) and ``part_inliers`` (summed
over rigid parts) each alone: the recall of each positive category at 1 % and 0.1 % FPR
(thresholds above that share of the negatives' best values over all works), how many
look-alikes reach the threshold, and the milliseconds that part verification adds to a
check (every work verified, as in the suite). Run::

    python -m screener.bench.parts --suite DIR --out FILE.json [--every N]
        [--variant NAME=k=v,...]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gzip
import json
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from screener.bench import characters_suite as csuite
from screener.core.decode import decode
from screener.matching.registry import over_black
from screener.matching.verification import summed_inliers
from screener.models.keypoints import (
    LocalFeatures,
    PartParams,
    SiftExtractor,
    VerifyParams,
    verify,
    verify_parts,
)

WORK_SIZE = 512  # Settings().work_size: the copy every check extracts keypoints from
FPRS = (0.01, 0.001)
FULL = 20.0  # where the shipped policy's local_inliers ramp reaches full evidence


def _features(sift: SiftExtractor, path: Path, both: bool) -> list[LocalFeatures]:
    decoded = decode(path.read_bytes(), max_side=WORK_SIZE)
    found = [sift.extract(decoded.image)]
    black = over_black(decoded) if both else None
    if black is not None:
        found.append(sift.extract(black))
    return found


def _threshold(negatives: list[float], fpr: float) -> float:
    """The least value that at most ``fpr`` of the negatives reach (strictly above the
    rest)."""
    ordered = sorted(negatives, reverse=True)
    allowed = math.floor(fpr * len(ordered))
    return ordered[allowed] + 0.5 if allowed < len(ordered) else 0.0


def evaluate(
    suite: Path, variants: dict[str, PartParams], features: int = 600, every: int = 1
) -> dict[str, Any]:
    """``every``: verify every so-many-th query only (a cheaper, still mixed sample)."""
    sift = SiftExtractor(features=features)
    params = VerifyParams()
    works = {
        folder.name: [f for p in sorted(folder.iterdir()) for f in _features(sift, p, True)]
        for folder in sorted((suite / "works").iterdir())
    }
    with (suite / "truth.csv").open(encoding="utf-8") as handle:
        truth = list(csv.DictReader(handle))[::every]
    rows: list[dict[str, Any]] = []
    added: list[float] = []
    for row in truth:
        path = suite / "queries" / f"{row['query_id']}.png"
        query = _features(sift, path, False)[0]
        local: dict[str, int] = defaultdict(int)
        summed: dict[str, dict[str, int]] = {name: defaultdict(int) for name in variants}
        spent = 0.0
        for work_id, refs in works.items():
            for ref in refs:
                start = time.perf_counter()
                whole = verify(query, ref, params)
                middle = time.perf_counter()
                for name, variant in variants.items():
                    _, parts = verify_parts(query, ref, params, variant)
                    summed[name][work_id] = max(summed[name][work_id], summed_inliers(parts))
                    if name == "default":
                        spent += (time.perf_counter() - middle) - (middle - start)
                local[work_id] = max(local[work_id], whole.inliers)
        added.append(spent * 1000.0)
        own = row["work_id"] or None
        values = {"local_inliers": local, **{f"part_inliers[{n}]": v for n, v in summed.items()}}
        rows.append(
            {
                "query": row["query_id"],
                "category": row["category"],
                "truth": own,
                "values": {
                    name: (by_work.get(own, 0) if own else max(by_work.values(), default=0))
                    for name, by_work in values.items()
                },
            }
        )
    return {"rows": rows, "added_ms_per_check": added, "report": report(rows, added)}


def from_records(path: Path) -> dict[str, Any]:
    """The same report from a ``screener bench characters`` run's records (its
    ``records.json.gz``): ``local_inliers`` and ``part_inliers`` as the checks gave them
    (a positive's own work, a negative's best work), and per category how many queries the
    parts raised (``part_inliers`` above ``local_inliers``: a further part, or parts where
    no whole homography verified)."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        saved = json.load(handle)
    rows = [
        {
            "query": r["query_id"],
            "category": r["category"],
            "truth": r["truth"],
            "values": {
                name: float(r["values"].get(name) or 0.0)
                for name in ("local_inliers", "part_inliers")
            },
        }
        for r in saved["records"]
    ]
    out = report(rows, [])
    out["raised_by_parts"] = {
        category: sum(
            r["values"]["part_inliers"] > r["values"]["local_inliers"]
            for r in rows
            if r["category"] == category
        )
        for category in (*csuite.POSITIVE, *csuite.NEGATIVE)
    }
    out["records"] = str(path)
    return out


def report(rows: list[dict[str, Any]], added: list[float]) -> dict[str, Any]:
    negatives = [r for r in rows if r["truth"] is None]
    names = list(rows[0]["values"]) if rows else []
    out: dict[str, Any] = {
        "negatives": len(negatives),
        "positives": {c: sum(r["category"] == c for r in rows) for c in csuite.POSITIVE},
        "added_ms_per_check": {
            "p50": float(np.percentile(added, 50)) if added else None,
            "mean": float(np.mean(added)) if added else None,
            "p99": float(np.percentile(added, 99)) if added else None,
        },
        "signals": {},
    }
    for name in names:
        neg = [float(r["values"][name]) for r in negatives]
        entry: dict[str, Any] = {
            # The shipped local_inliers ramp is full from 20: what blocks on keypoints.
            "lookalikes_20_or_more": sum(
                r["values"][name] >= FULL for r in negatives if r["category"] == csuite.LOOKALIKE
            ),
            "lookalike_max": max(
                (r["values"][name] for r in negatives if r["category"] == csuite.LOOKALIKE),
                default=None,
            ),
            "negative_max": max(neg, default=None),
        }
        for fpr in FPRS:
            t = _threshold(neg, fpr)
            entry[str(fpr)] = {
                "threshold": t,
                "recall": {
                    c: _share([r["values"][name] >= t for r in rows if r["category"] == c])
                    for c in csuite.POSITIVE
                },
                "lookalikes_reaching": sum(
                    r["values"][name] >= t for r in negatives if r["category"] == csuite.LOOKALIKE
                ),
            }
        out["signals"][name] = entry
    return out


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _variant(text: str) -> tuple[str, PartParams]:
    name, _, settings = text.partition("=")
    fields = {f.name: f.type for f in dataclasses.fields(PartParams)}
    changes: dict[str, Any] = {}
    for item in filter(None, settings.split(",")):
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"unknown part parameter {key!r}; known: {sorted(fields)}")
        changes[key] = int(value) if fields[key] in ("int", int) else float(value)
    return name, PartParams(**changes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", type=Path, help="a --keep-suite folder")
    parser.add_argument(
        "--records", type=Path, help="instead: report from a bench run's records.json.gz"
    )
    parser.add_argument("--out", type=Path, required=True, help="the JSON to write")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME=key=value,... PartParams to try besides the defaults",
    )
    parser.add_argument("--every", type=int, default=1, help="every so-many-th query only")
    args = parser.parse_args(argv)
    if args.records is not None:
        found = from_records(args.records)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(found, indent=1))
        print(json.dumps(found, indent=1))
        return
    if args.suite is None or not (args.suite / "truth.csv").is_file():
        raise SystemExit(f"{args.suite} is not a kept character suite (no truth.csv)")
    variants = dict([("default", PartParams()), *(_variant(v) for v in args.variant)])
    result = evaluate(args.suite, variants, every=max(1, args.every))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["report"], indent=1))


if __name__ == "__main__":
    main()
