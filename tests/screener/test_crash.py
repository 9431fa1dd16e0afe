"""A registration killed at any point leaves a catalog and indexes that agree after restart."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from screener import Screener, Settings

WRITER = r"""
import io, sys
from pathlib import Path
from screener import Screener, Settings
from screener.core import samples

data_dir, signals, start = Path(sys.argv[1]), sys.argv[2].split(","), int(sys.argv[3])
with Screener(Settings(data_dir=data_dir, signals=signals)) as s:
    for i in range(start, start + 1000):
        buffer = io.BytesIO()
        samples.scene(i, size=(160, 120)).save(buffer, "PNG")
        s.registry.register(f"w{i}", [buffer.getvalue()])
        if i % 3 == 0:
            s.registry.save()  # kills also land inside index saves
        print(f"ACK w{i}", flush=True)
"""


def _run_and_kill(
    data_dir: Path, signals: str, start: int, after: int, fraction: float
) -> set[str]:
    """Start the writer, read its acknowledgements and kill it ``fraction`` of the way
    through the registration that follows its ``after``-th one. The wait is measured in
    the writer's own pace (the mean gap between its acknowledgements so far), so the kill
    lands at the same relative point on a quiet or a loaded machine."""
    errors = data_dir.parent / f"writer-{start}.err"  # a file: a full pipe would stall it
    with errors.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(data_dir), signals, str(start)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    assert proc.stdout is not None
    acked: list[str] = []
    times: list[float] = []
    while len(acked) < after:
        line = proc.stdout.readline()  # blocks until the writer acknowledges or exits
        if not line:
            proc.wait()
            raise AssertionError(
                f"the writer exited ({proc.returncode}) after {len(acked)} acknowledgements: "
                f"{errors.read_text()[-2000:]}"
            )
        if line.startswith("ACK "):
            acked.append(line.split()[1])
            times.append(time.monotonic())
    gap = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 0.0
    time.sleep(fraction * gap)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rest = proc.stdout.read().splitlines()
    return set(acked) | {line.split()[1] for line in rest if line.startswith("ACK ")}


@pytest.mark.slow
@pytest.mark.parametrize("signals", ["phash,pdq", "phash,pdq,sscd"])
def test_sigkill_during_registration_loses_no_acknowledged_work(
    tmp_path: Path, signals: str
) -> None:
    acked: set[str] = set()
    # Kill at several points, counted in the writer's own acknowledgements (so the test
    # proves the same at any machine speed): right after one, part-way through the next
    # registration (inside its transaction or the index save of every third), and just
    # before the next acknowledgement. Seeded, so a failure can be replayed.
    rng = random.Random(17)
    rounds = [(1, 0.0), (2, 0.5), (3, 0.9), (4, rng.random()), (5, rng.random())]
    for round_, (after, fraction) in enumerate(rounds):
        acked |= _run_and_kill(tmp_path, signals, 100 * round_, after, fraction)
        with Screener(Settings(data_dir=tmp_path, signals=signals.split(","))) as s:
            present = {w.id for w in s.catalog.list_works()}
            assert acked <= present, f"lost acknowledged works: {sorted(acked - present)}"
            reports = s.indexes.verify()
            assert all(r.ok for r in reports), reports
            for work in s.catalog.list_works():
                assert work.reference_count == 1, work
    assert len(acked) >= sum(after for after, _ in rounds)
