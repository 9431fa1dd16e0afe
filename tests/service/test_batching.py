"""Micro-batching: concurrent submissions share calls, and results go back to their owners."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from service.batching import MicroBatcher


def test_concurrent_items_share_batches_and_results_return_in_place() -> None:
    calls: list[list[int]] = []
    gate = threading.Event()

    def double(items: Sequence[int]) -> list[int]:
        gate.wait(5)  # hold the first call so the rest queue up behind it
        calls.append(list(items))
        return [2 * i for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(double, max_batch=4, max_wait=0.05)

    async def main() -> list[int]:
        tasks = [asyncio.create_task(batcher.submit(i)) for i in range(10)]
        await asyncio.sleep(0.1)
        gate.set()
        return list(await asyncio.gather(*tasks))

    try:
        assert asyncio.run(main()) == [2 * i for i in range(10)]
    finally:
        batcher.close()
    assert sorted(i for call in calls for i in call) == list(range(10))
    assert max(len(c) for c in calls) == 4  # capped at max_batch
    assert len(calls) < 10  # shared


def test_a_failing_batch_fails_each_of_its_requests_and_the_batcher_goes_on() -> None:
    def picky(items: Sequence[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky")
        return list(items)

    batcher: MicroBatcher[int, int] = MicroBatcher(picky, max_batch=1, max_wait=0)

    async def main() -> None:
        with pytest.raises(ValueError, match="unlucky"):
            await batcher.submit(13)
        assert await batcher.submit(7) == 7

    try:
        asyncio.run(main())
    finally:
        batcher.close()


def test_a_caller_that_goes_away_does_not_stop_the_batcher() -> None:
    gate = threading.Event()

    def slow(items: Sequence[int]) -> list[int]:
        gate.wait(5)
        return list(items)

    batcher: MicroBatcher[int, int] = MicroBatcher(slow, max_batch=8, max_wait=0.01)

    async def main() -> None:
        first = asyncio.create_task(batcher.submit(1))  # holds the worker at the gate
        await asyncio.sleep(0.05)
        gone = asyncio.create_task(batcher.submit(2))
        await asyncio.sleep(0.05)
        gone.cancel()  # its client disconnected while it waited
        gate.set()
        assert await first == 1
        assert await asyncio.wait_for(batcher.submit(3), 5) == 3

    try:
        asyncio.run(main())
    finally:
        batcher.close()
