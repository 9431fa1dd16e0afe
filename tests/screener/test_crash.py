"""A registration killed at any point leaves a catalog and indexes that agree after restart."""

from __future__ import annotations

import os
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
from screener import Screener, Settings, samples

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


def _run_and_kill(data_dir: Path, signals: str, start: int, delay: float) -> set[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data_dir), signals, str(start)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    acked: set[str] = set()
    deadline = time.monotonic() + delay
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline and proc.poll() is None:
        line = proc.stdout.readline()
        if line.startswith("ACK "):
            acked.add(line.split()[1])
        else:
            time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    os.set_blocking(proc.stdout.fileno(), True)
    acked |= {
        line.split()[1] for line in proc.stdout.read().splitlines() if line.startswith("ACK ")
    }
    return acked


@pytest.mark.slow
@pytest.mark.parametrize("signals", ["phash,pdq", "phash,pdq,sscd"])
def test_sigkill_during_registration_loses_no_acknowledged_work(
    tmp_path: Path, signals: str
) -> None:
    acked: set[str] = set()
    # Kill at several points: start-up, mid-transaction, mid-save, between registrations.
    for round_, delay in enumerate([1.5, 2.2, 2.9, 3.3, 4.1]):
        acked |= _run_and_kill(tmp_path, signals, 100 * round_, delay)
        with Screener(Settings(data_dir=tmp_path, signals=signals.split(","))) as s:
            present = {w.id for w in s.catalog.list_works()}
            assert acked <= present, f"lost acknowledged works: {sorted(acked - present)}"
            reports = s.indexes.verify()
            assert all(r.ok for r in reports), reports
            for work in s.catalog.list_works():
                assert work.reference_count == 1, work
    assert len(acked) >= 5, "the writer never got going: the test proved nothing"
