"""What a running app holds: the desk (screener, catalog, indexes, keys, audit), the
batcher, the metrics; loaded in the background so /healthz answers at once."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from screener.desk import Desk
from screener.errors import InputError
from screener.screening import Analysis, CheckItem, Screener
from service.batching import MicroBatcher
from service.errors import ServiceError
from service.observe import Metrics
from service.settings import ServiceSettings

log = logging.getLogger("service")

Result = Analysis | InputError


class Runtime:
    def __init__(self, settings: ServiceSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._desk: Desk | None = None
        self._batcher: MicroBatcher[CheckItem, Result] | None = None
        self.failure: str | None = None
        self._loaded = threading.Event()

    # start-up and shutdown ------------------------------------------------------------------

    def load(self) -> None:
        """Build everything heavy (models, indexes, database); run off the event loop."""
        try:
            screener = Screener(self.settings)
            desk = Desk(screener)
            resumed = desk.resume_notices()  # recorded before a crash, not yet acted on
            if resumed:
                log.warning("took the measures of %d notice(s) left waiting", len(resumed))
            if self.settings.batching:
                self._batcher = MicroBatcher(
                    self._screen_batch,
                    max_batch=self.settings.batch_max,
                    max_wait=self.settings.batch_wait_ms / 1000,
                    on_batch=self.metrics.batch,
                )
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

    # screening ------------------------------------------------------------------------------

    def _screen_batch(self, items: Sequence[CheckItem]) -> list[Result]:
        return self.desk.screen(items)

    async def screen(self, items: Sequence[CheckItem]) -> list[Result]:
        """Screen images off the event loop, in micro-batches when batching is on."""
        desk = self.desk
        if self._batcher is not None:
            return await self._batcher.submit_many(items)
        return await run_in_threadpool(self._timed, desk, items)

    def _timed(self, desk: Desk, items: Sequence[CheckItem]) -> list[Result]:
        start = time.perf_counter()
        results = desk.screen(items)
        self.metrics.batch(len(items), time.perf_counter() - start)
        return results

    def refresh_gauges(self) -> None:
        if self._desk is None:
            return
        screener = self._desk.screener
        for signal, size in screener.indexes.sizes().items():
            self.metrics.index_size.labels(signal).set(size)
        self.metrics.works.set(screener.catalog.count_works())
