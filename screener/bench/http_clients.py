"""The HTTP load benchmark's client side: query images, the load generator and its measurements."""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from screener.bench.common import percentile_ms
from screener.bench.http_server import Server
from screener.bench.transforms import TRANSFORMS
from screener.core import samples

if TYPE_CHECKING:
    import httpx


# the queries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    name: str
    data: bytes
    kind: str  # "copy" or "unrelated"
    work: str | None = None
    edit: str | None = None


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(buffer, fmt, quality=90)
    else:
        image.save(buffer, fmt)
    return buffer.getvalue()


def _work_image(seed: int, i: int) -> Image.Image:
    return samples.scene(seed * 100_000 + i)


def build_queries(works: int, count: int, seed: int) -> list[Query]:
    """Copies (a seeded edit of a work, cycling through every edit) and unrelated scenes,
    alternating, as JPEG."""
    edits = sorted(TRANSFORMS)
    originals = [_work_image(seed, i) for i in range(works)]
    queries = []
    for i in range(count):
        if i % 2 == 0:
            n = i // 2
            work, edit = n % works, edits[n % len(edits)]
            rng = np.random.default_rng([seed, 7, n])
            image = TRANSFORMS[edit](originals[work].convert("RGBA"), rng)
            queries.append(Query(f"q{i}-{edit}", _encode(image, "JPEG"), "copy", f"w{work}", edit))
        else:
            image = samples.scene(seed * 100_000 + 50_000 + i)
            queries.append(Query(f"q{i}-unrelated", _encode(image, "JPEG"), "unrelated"))
    return queries


def prepare(data_dir: Path, works: int, seed: int) -> tuple[str, dict[str, Any]]:
    """Register the works and create a platform key in a fresh data directory."""
    from screener.core.settings import Settings
    from screener.duties.desk import Desk
    from screener.matching.pipeline import Screener

    started = time.perf_counter()
    screener = Screener(Settings(data_dir=data_dir, database_url=None))
    try:
        desk = Desk(screener)
        for i in range(works):
            screener.registry.register(
                f"w{i}", [_encode(_work_image(seed, i), "PNG")], title=f"Generated work {i}"
            )
        _, key = desk.keys.create("platform", "bench", "screener bench http")
        sizes = screener.indexes.sizes()
        signals = screener.signals.names
    finally:
        screener.close()
    return key, {
        "register_s": round(time.perf_counter() - started, 2),
        "index_sizes": sizes,
        "signals": signals,
    }


# measurements ------------------------------------------------------------------------------


def _cpu_jiffies(pid: int) -> tuple[int, int] | None:
    """(the process's user+system ticks, the machine's busy ticks) from /proc, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        own = int(fields[11]) + int(fields[12])  # utime, stime
        total = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        busy = sum(int(total[i]) for i in (0, 1, 2, 5, 6, 7))  # all but idle and iowait
    except (OSError, IndexError, ValueError):
        return None
    return own, busy


def _tick() -> float:
    try:
        return 1.0 / os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return 0.01


def _metric_sums(text: str, names: Sequence[str]) -> dict[str, float]:
    """The values of unlabelled samples ``names`` in Prometheus text format."""
    wanted = set(names)
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) >= 2 and parts[0] in wanted:
            found[parts[0]] = float(parts[1])
    return found


BATCH_METRICS = (
    "screener_batch_images_sum",
    "screener_batch_images_count",
    "screener_model_seconds_sum",
)


async def _scrape(client: httpx.AsyncClient, url: str) -> dict[str, float]:
    try:
        answer = await client.get(f"{url}/metrics")
    except Exception:
        return {}
    return _metric_sums(answer.text, BATCH_METRICS) if answer.status_code == 200 else {}


@dataclass
class Outcome:
    query: int
    ok: bool
    seconds: float
    decision: str | None = None
    score: float | None = None
    top_work: str | None = None
    error: str | None = None


async def _one(client: httpx.AsyncClient, url: str, key: str, index: int, query: Query) -> Outcome:
    import httpx

    started = time.perf_counter()
    try:
        answer = await client.post(
            f"{url}/v1/check",
            headers={"Authorization": f"Bearer {key}"},
            files=[("images", (f"{query.name}.jpg", query.data, "image/jpeg"))],
        )
        seconds = time.perf_counter() - started
    except httpx.HTTPError as exc:
        return Outcome(index, False, time.perf_counter() - started, error=f"{type(exc).__name__}")
    if answer.status_code != 200:
        return Outcome(
            index, False, seconds, error=f"HTTP {answer.status_code}: {answer.text[:200]}"
        )
    try:
        result = answer.json()["results"][0]
    except (ValueError, KeyError, IndexError):
        return Outcome(index, False, seconds, error="no result in the answer")
    if result.get("error"):
        return Outcome(index, False, seconds, error=f"image error: {result['error']}")
    return Outcome(
        index,
        True,
        seconds,
        decision=result.get("decision"),
        score=result.get("fused_score"),
        top_work=(result.get("verdict") or {}).get("top_work_id"),
    )


async def load(
    url: str,
    key: str,
    queries: Sequence[Query],
    *,
    concurrency: int,
    requests: int,
    duration: float,
    timeout: float,
) -> tuple[list[Outcome], float, str]:
    """``concurrency`` clients send queries in order until ``requests`` have been sent or
    ``duration`` has passed; returns the outcomes, the wall time and which bound stopped it.
    """
    import httpx

    sent = 0
    outcomes: list[Outcome] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
        started = time.perf_counter()
        deadline = started + duration

        async def worker() -> None:
            nonlocal sent
            while sent < requests and time.perf_counter() < deadline:
                index = sent
                sent += 1
                outcomes.append(await _one(client, url, key, index, queries[index % len(queries)]))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return outcomes, elapsed, "count" if sent >= requests else "duration"


async def level(
    server: Server,
    key: str,
    queries: Sequence[Query],
    *,
    concurrency: int,
    requests: int,
    duration: float,
    timeout: float,
) -> tuple[dict[str, Any], list[Outcome]]:
    """One bounded load, with what the server and the machine did meanwhile."""
    import httpx

    tick = _tick()
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as probe:
        before_metrics = await _scrape(probe, server.url)
        load_before = os.getloadavg()
        server_before = _cpu_jiffies(server.process.pid)
        client_before = time.process_time()
        outcomes, elapsed, stopped_by = await load(
            server.url,
            key,
            queries,
            concurrency=concurrency,
            requests=requests,
            duration=duration,
            timeout=timeout,
        )
        client_cpu = time.process_time() - client_before
        server_after = _cpu_jiffies(server.process.pid)
        load_after = os.getloadavg()
        after_metrics = await _scrape(probe, server.url)
    good = [o.seconds for o in outcomes if o.ok]
    failures = [o for o in outcomes if not o.ok]
    entry: dict[str, Any] = {
        "concurrency": concurrency,
        "sent": len(outcomes),
        "ok": len(good),
        "errors": len(failures),
        "error_samples": sorted({o.error or "" for o in failures})[:5],
        "stopped_by": stopped_by,
        "elapsed_s": round(elapsed, 3),
        "throughput_rps": round(len(good) / elapsed, 3) if elapsed > 0 else 0.0,
        "p50_ms": _ms(good, 50),
        "p90_ms": _ms(good, 90),
        "p99_ms": _ms(good, 99),
        "mean_ms": round(float(np.mean(good)) * 1000, 1) if good else None,
        "max_ms": round(max(good) * 1000, 1) if good else None,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "client_cpu_s": round(client_cpu, 2),
    }
    if server_before is not None and server_after is not None and elapsed > 0:
        server_cpu = (server_after[0] - server_before[0]) * tick
        machine_busy = (server_after[1] - server_before[1]) * tick
        others = max(0.0, machine_busy - server_cpu - client_cpu)
        entry.update(
            server_cpu_s=round(server_cpu, 2),
            server_cpu_ms_per_request=round(1000 * server_cpu / len(good), 1) if good else None,
            server_cores_busy=round(server_cpu / elapsed, 2),
            other_processes_cores_busy=round(others / elapsed, 2),
        )
    calls = after_metrics.get(BATCH_METRICS[1], 0.0) - before_metrics.get(BATCH_METRICS[1], 0.0)
    if calls > 0:
        images, _, seconds = (
            after_metrics.get(m, 0.0) - before_metrics.get(m, 0.0) for m in BATCH_METRICS
        )
        entry.update(
            model_calls=int(calls),
            mean_batch_images=round(images / calls, 2),
            model_ms_per_call=round(1000 * seconds / calls, 1),
        )
    return entry, outcomes


def _ms(samples_s: Sequence[float], q: float) -> float | None:
    """A percentile in milliseconds; None (not NaN, which JSON lacks) without samples."""
    return round(percentile_ms(list(samples_s), q), 1) if samples_s else None
