"""Micro-batching: concurrent submissions share calls, and results go back to their owners."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from screener.core.samples import scene
from screener.service.batching import MicroBatcher
from tests.service.conftest import encode, running_service


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


@pytest.mark.slow
def test_service_with_batching_gives_each_request_its_own_verdict(tmp_path: Path) -> None:
    works = {seed: scene(seed) for seed in (1, 2)}
    with running_service(
        tmp_path, batching=True, batch_wait_ms=200, signals=["phash", "pdq", "sscd"]
    ) as service:
        for seed, image in works.items():
            assert service.register("holder", f"w{seed}", encode(image)).status_code == 201
        queries = [
            (encode(works[1], "JPEG", quality=80), "w1"),
            (encode(scene(7), "JPEG"), None),
            (encode(works[2], "JPEG", quality=80), "w2"),
            (encode(scene(8), "JPEG"), None),
        ]
        with ThreadPoolExecutor(len(queries)) as pool:
            responses = list(pool.map(lambda q: service.check("platform", q[0]), queries))
        for (_, expected), response in zip(queries, responses, strict=True):
            result = response.json()["results"][0]
            assert result["verdict"]["top_work_id"] == expected
            assert result["decision"] == ("block" if expected else "allow")
        metrics = service.client.get("/metrics").text
        count = _metric(metrics, "screener_batch_images_count")
        total = _metric(metrics, "screener_batch_images_sum")
        assert total == len(queries)  # every check screened once; registrations are not
        assert count < total  # at least one call served more than one request


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")
