"""The front door: `Screener` opens the catalog, signals and indexes, and checks images;
its `registry` registers and removes works.

    with Screener.open("screener-data") as screener:
        screener.registry.register("bridge", ["bridge.jpg"], title="Bridge")
        verdict = screener.check("generated.png")

The screener is built by concept: `startup` (what it opens and keeps caught up),
`scoring` and `checks` (the check stages), `registry` (registration), `analysis` (what a
check takes and gives). This module puts them together and keeps the names callers import.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from screener.core.settings import Settings
from screener.matching.analysis import Analysis, CheckItem, ImageInput, Prepared
from screener.matching.checks import Checks
from screener.matching.registry import Registered, Registry, check_work_id
from screener.matching.scoring import LEVELS_CACHE, NORM_SIGNAL

__all__ = [
    "LEVELS_CACHE",
    "NORM_SIGNAL",
    "Analysis",
    "CheckItem",
    "ImageInput",
    "Prepared",
    "Registered",
    "Registry",
    "Screener",
    "check_work_id",
]


class Screener(Checks):
    """Screens images against the registered works. Thread-safe for checks."""

    @classmethod
    def open(cls, data_dir: Path | str | None = None, **settings: Any) -> Screener:
        if data_dir is not None:
            settings["data_dir"] = Path(data_dir)
        return cls(Settings(**settings))

    def close(self) -> None:
        with self._lock:
            self.indexes.save()
            if self.local is not None:
                self.local.votes.save()
        self.catalog.close()

    def __enter__(self) -> Screener:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
