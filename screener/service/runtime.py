"""What a running app holds: the desk (screener, catalog, indexes, keys, audit), the
batcher, the metrics; loaded in the background so /healthz answers at once."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence

from PIL import Image
from starlette.concurrency import run_in_threadpool

from screener.core.errors import InputError
from screener.duties.appeals import Appeals
from screener.duties.desk import Desk
from screener.matching.pipeline import Analysis, CheckItem, Prepared, Screener
from screener.matching.signals import RegionFingerprint
from screener.service.batching import MicroBatcher
from screener.service.errors import ServiceError
from screener.service.observe import Metrics
from screener.service.settings import ServiceSettings

log = logging.getLogger("service")

Result = Analysis | InputError
Fingerprinted = tuple[list[RegionFingerprint], float]  # a query's fingerprints, batch ms


class Runtime:
    def __init__(self, settings: ServiceSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._desk: Desk | None = None
        self._appeals: Appeals | None = None
        self._batcher: MicroBatcher[Image.Image, Fingerprinted] | None = None
        self.failure: str | None = None
        self._loaded = threading.Event()

    # start-up and shutdown ------------------------------------------------------------------

    def load(self) -> None:
        """Build everything heavy (models, indexes, database); run off the event loop."""
        try:
            screener = Screener(self.settings)
            desk = Desk(screener)
            # Jobs a crash left queued or running, notices left without their measures.
            resumed = desk.start_jobs()
            if resumed:
                log.warning("resumed %d job(s) left waiting", resumed)
            if self.settings.batching:
                self._batcher = MicroBatcher(
                    self._fingerprint_batch,
                    max_batch=self.settings.batch_max,
                    max_wait=self.settings.batch_wait_ms / 1000,
                    on_batch=self.metrics.batch,
                )
            self._appeals = Appeals.of(desk)
            self._desk = desk
            self.metrics.ready.set(1)
            log.info(
                "ready",
                extra={
                    "fields": {
                        "signals": screener.signals.names,
                        "missing": screener.signals.missing,
                        "policy": screener.policy.version,
                    }
                },
            )
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            log.exception("start-up failed")
        finally:
            self._loaded.set()

    async def start(self) -> None:
        await asyncio.to_thread(self.load)

    def wait(self, timeout: float | None = None) -> bool:
        return self._loaded.wait(timeout)

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.close()
        if self._desk is not None:
            self._desk.stop_jobs()
            self._desk.screener.close()

    # access ---------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._desk is not None

    @property
    def desk(self) -> Desk:
        if self._desk is None:
            if self.failure is not None:
                raise ServiceError(
                    503, "start_up_failed", f"the service failed to start: {self.failure}"
                )
            raise ServiceError(
                503, "starting", "the service is loading its models and indexes; retry shortly"
            )
        return self._desk

    @property
    def appeals(self) -> Appeals:
        _ = self.desk  # the same 503 while loading
        assert self._appeals is not None  # set before the desk
        return self._appeals

    # screening ------------------------------------------------------------------------------

    def _fingerprint_batch(self, images: Sequence[Image.Image]) -> list[Fingerprinted]:
        """The batched step: one model call per signal for every image waiting."""
        start = time.perf_counter()
        queries = self.desk.screener.fingerprint_many(images)
        elapsed = time.perf_counter() - start
        return [(query, elapsed * 1000) for query in queries]

    async def screen(self, items: Sequence[CheckItem]) -> list[Result]:
        """Screen images off the event loop. Decoding and scoring run in the thread pool,
        request by request; with batching on, the fingerprinting (the model calls) of
        concurrent requests is gathered into shared calls."""
        screener = self.desk.screener
        prepared = await run_in_threadpool(lambda: [screener.prepare(i) for i in items])
        good = [p for p in prepared if isinstance(p, Prepared)]
        images = [p.decoded.image for p in good]
        if not images:
            fingerprinted: list[Fingerprinted] = []
        elif self._batcher is not None:
            fingerprinted = await self._batcher.submit_many(images)
        else:
            start = time.perf_counter()
            fingerprinted = await run_in_threadpool(self._fingerprint_batch, images)
            self.metrics.batch(len(images), time.perf_counter() - start)
        found = {id(p): f for p, f in zip(good, fingerprinted, strict=True)}

        def conclude() -> list[Result]:
            return [
                p if isinstance(p, InputError) else screener.conclude(p, *found[id(p)])
                for p in prepared
            ]

        return await run_in_threadpool(conclude)

    def refresh_gauges(self) -> None:
        if self._desk is None:
            return
        screener = self._desk.screener
        for signal, size in screener.indexes.sizes().items():
            self.metrics.index_size.labels(signal).set(size)
        self.metrics.works.set(screener.catalog.count_works())
        if self._appeals is not None:
            late = self._appeals.overdue()
            self.metrics.appeals_overdue.labels("respond").set(late.respond)
            self.metrics.appeals_overdue.labels("decide").set(late.decide)
