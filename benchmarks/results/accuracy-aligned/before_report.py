"""The leave-one-domain-out report of the check before the aligned agreement, from the
same saved records: every candidate's ``aligned_agreement`` dropped (the one value the
new check adds) and the previous shipped policy as the template (no gate, floor 30).

    git show 386ebae:screener/data/default_policy.yaml > /tmp/policy-before.yaml
    python benchmarks/results/accuracy-aligned/before_report.py RECORDS_DIR \
        /tmp/policy-before.yaml OUT_DIR
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from screener.bench import accuracy, lodo, lodo_report
from screener.bench.common import write_json
from screener.core import policy as policy_mod

DROPPED = "aligned_agreement"


def _without(values: dict[str, float | None]) -> dict[str, float | None]:
    return {name: value for name, value in values.items() if name != DROPPED}


def strip(records: Sequence[accuracy.Record]) -> list[accuracy.Record]:
    return [
        dataclasses.replace(
            r,
            values=_without(r.values),
            candidates=tuple((work, _without(values)) for work, values in r.candidates),
        )
        for r in records
    ]


def main(records_dir: Path, policy_path: Path, out: Path) -> None:
    fit, config = lodo.load(lodo.records_path(records_dir, "fit"))
    report_records, _ = lodo.load(lodo.records_path(records_dir, "report"))
    template = policy_mod.loads(policy_path.read_text())
    report = lodo_report.report(
        strip(fit),
        strip(report_records),
        template,
        target_fpr=0.001,
        review_fpr=0.01,
        config={**config, "records": str(records_dir)},
        command="python " + " ".join(sys.argv),
    )
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "lodo.json", report)
    (out / "lodo.md").write_text(lodo_report.markdown(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
