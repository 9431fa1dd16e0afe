"""Replacing a file so that a reader sees the old bytes or the new, never half of them.

Written once for every writer in the package (index files, index archives, the background
bank, evidence pictures from the CLI, benchmark results). It lives here, in the lowest layer,
because the indexes need it and may import third-party code only; every layer above may
import it. The bytes go to a temporary file in the same folder, are fsynced, and the
temporary file is renamed over the target; the rename is then made durable too.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable; not every platform can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on a clean exit it is fsynced and
    renamed over ``path``, on an exception removed (``path`` keeps its old bytes)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as done:
            os.fsync(done.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new bytes, never half."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
