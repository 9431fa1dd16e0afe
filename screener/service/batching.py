"""Micro-batching: checks that arrive together share one model call per signal.

Requests put their images on a queue; one worker thread takes whatever is waiting (up
to ``max_batch``, waiting at most ``max_wait`` for more once the first has arrived) and
runs them as one batch, off the event loop. With batching off, each request runs on its
own in the thread pool.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Job(Generic[T, R]):
    item: T
    future: Future[R]


class MicroBatcher(Generic[T, R]):
    """Runs ``fn`` over batches of submitted items in one background thread."""

    def __init__(
        self,
        fn: Callable[[Sequence[T]], Sequence[R]],
        *,
        max_batch: int = 8,
        max_wait: float = 0.005,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self._fn = fn
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._on_batch = on_batch
        self._queue: queue.Queue[_Job[T, R] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._thread.start()

    async def submit(self, item: T) -> R:
        future: Future[R] = Future()
        self._queue.put(_Job(item, future))
        return await asyncio.wrap_future(future)

    async def submit_many(self, items: Sequence[T]) -> list[R]:
        return list(await asyncio.gather(*(self.submit(i) for i in items)))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _take(self) -> list[_Job[T, R]] | None:
        """The next batch; jobs whose caller went away are dropped, and the rest marked
        running so that a late cancel can no longer race with setting their result."""
        jobs = self._gather()
        if jobs is None:
            return None
        return [job for job in jobs if job.future.set_running_or_notify_cancel()]

    def _gather(self) -> list[_Job[T, R]] | None:
        first = self._queue.get()
        if first is None:
            return None
        jobs = [first]
        deadline = time.monotonic() + self.max_wait
        while len(jobs) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                job = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if job is None:
                self._queue.put(None)  # stop after this batch
                break
            jobs.append(job)
        return jobs

    def _run(self) -> None:
        while (jobs := self._take()) is not None:
            if not jobs:
                continue
            started = time.perf_counter()
            try:
                results = self._fn([j.item for j in jobs])
            except BaseException as exc:  # hand every failure to its waiting request
                for job in jobs:
                    job.future.set_exception(exc)
                continue
            for job, result in zip(jobs, results, strict=True):
                job.future.set_result(result)
            if self._on_batch is not None:
                self._on_batch(len(jobs), time.perf_counter() - started)
