"""What a check takes and gives: the items the service batches, the decoded images
waiting for their fingerprints, the analysis a check returns, and the clock that times
its stages. Apart from `Screener` so that the check stages and the service share them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from screener.core.decode import DecodedImage
from screener.core.verdict import Match, Verdict
from screener.matching.signals import RegionFingerprint
from screener.matching.verification import LocalMatch

ImageInput = Path | str | bytes | DecodedImage


@dataclass(frozen=True)
class CheckItem:
    """One image to check, with what the caller said about it."""

    image: ImageInput
    prompt: str | None = None
    platform: str | None = None  # the caller's owner name, for licences
    include_works: tuple[str, ...] = ()
    territory: str | None = None  # ISO 3166-1 alpha-2 of the release; None: everywhere


@dataclass(frozen=True)
class Prepared:
    """A decoded image waiting for its fingerprints."""

    item: CheckItem
    decoded: DecodedImage
    decode_ms: float


@dataclass(frozen=True)
class Analysis:
    verdict: Verdict
    candidates: tuple[Match, ...]  # every work compared, most severe and closest first
    query: tuple[RegionFingerprint, ...] = ()  # the check's own fingerprints
    local: dict[str, LocalMatch] = field(default_factory=dict)  # verified works


class Clock:
    """Each stage's milliseconds, and the running total."""

    def __init__(self) -> None:
        self._start = self._last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def since_start(self) -> float:
        return (time.perf_counter() - self._start) * 1000

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + (now - self._last) * 1000, 3)
        self.laps["total"] = round((now - self._start) * 1000, 3)
        self._last = now
