"""A policy as a platform would run it, on saved report records: one threshold over every
unrelated image of every domain at 0.1 % and 1 % false positives (recall with the right
work named, by category and domain), each domain at its own 0.1 % threshold, and the
policy's own decisions. ``--strip`` drops the aligned agreement from the records first:
the check before it was measured by default.

    python benchmarks/results/accuracy-contradiction/shipped.py RECORDS POLICY [--strip]
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from screener.bench import accuracy, lodo
from screener.core import policy as policy_mod


def strip(records: list[accuracy.Record]) -> list[accuracy.Record]:
    return [
        replace(
            r,
            candidates=tuple(
                (w, {k: v for k, v in c.items() if k != "aligned_agreement"})
                for w, c in r.candidates
            ),
        )
        for r in records
    ]


def found(scored: list[accuracy.Record], threshold: float) -> dict[str, list[bool]]:
    hits: dict[str, list[bool]] = defaultdict(list)
    for r in scored:
        if r.truth is not None:
            hits[r.category].append(r.top_work == r.truth and accuracy.rank(r) >= threshold)
    return hits


def main() -> None:
    records, _ = lodo.load(Path(sys.argv[1]))
    if "--strip" in sys.argv:
        records = strip(records)
    policy = policy_mod.load(Path(sys.argv[2]))
    scored = accuracy.rescore(records, policy)
    unrelated = [r for r in scored if r.truth is None]
    copies = [r for r in scored if r.truth is not None]
    negatives = np.array([accuracy.rank(r) for r in unrelated])
    print(f"policy {policy.version}; {len(copies)} copies, {len(unrelated)} unrelated")
    for fpr in (0.001, 0.01):
        threshold = accuracy.threshold_at(negatives, fpr)
        hits = found(scored, threshold)
        every = [h for v in hits.values() for h in v]
        domains: dict[str, list[bool]] = defaultdict(list)
        for r in copies:
            domains[r.group.split(".")[0]].append(
                r.top_work == r.truth and accuracy.rank(r) >= threshold
            )
        print(f"\none threshold at {fpr:.1%} (log-odds {threshold:.2f}): {np.mean(every):.3f}")
        print("  " + ", ".join(f"{d} {np.mean(v):.2f}" for d, v in sorted(domains.items())))
        print("  " + ", ".join(f"{c} {np.mean(v):.2f}" for c, v in sorted(hits.items())))
    each: list[bool] = []
    for domain in sorted({r.group.split(".")[0] for r in scored}):
        part = [r for r in scored if r.group.startswith(domain + ".")]
        threshold = accuracy.threshold_at(
            np.array([accuracy.rank(r) for r in part if r.truth is None]), 0.001
        )
        each += [r.top_work == r.truth and accuracy.rank(r) >= threshold for r in part if r.truth]
    print(f"\neach domain at its own 0.1 % threshold: {np.mean(each):.3f}")
    blocked = sum(r.decision == "block" for r in unrelated)
    reviewed = sum(r.decision == "review" for r in unrelated)
    lookalikes = [r for r in unrelated if ".l" in r.query_id]
    print(
        f"decisions: unrelated blocked {blocked}, reviewed {reviewed} of {len(unrelated)} "
        f"(look-alikes flagged {sum(r.decision != 'allow' for r in lookalikes)} of "
        f"{len(lookalikes)}); copies blocked with the right work "
        f"{np.mean([r.decision == 'block' and r.top_work == r.truth for r in copies]):.3f}, "
        f"held {np.mean([r.decision != 'allow' and r.top_work == r.truth for r in copies]):.3f}"
    )


if __name__ == "__main__":
    main()
