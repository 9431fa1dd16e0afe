"""The screener's command line run as a user runs it: a child process, state in a folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(
    data_dir: Path, *args: str, signals: str = "phash,pdq", stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCREENER_DATA_DIR": str(data_dir), "SCREENER_SIGNALS": signals}
    return subprocess.run(
        [sys.executable, "-m", "screener", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
