"""``screener bench http``: a bounded load against a locally started ``screener serve``.

A fresh data directory gets generated works (``screener.samples.scene``) and keys; queries
are seeded edits of the works (copies) and never-registered scenes (unrelated), one image
per request. For micro-batching off and for on, ``screener serve`` starts as a child
process on a free loopback port, each on its own copy of the data; after ``/readyz`` and a
warm-up, each concurrency level runs on one server and then the other (the order
alternating), until it has sent ``--requests`` requests or ``--duration`` seconds have
passed, whichever comes first. Every level records throughput, latency percentiles, errors (any
non-200 answer, per-image error or transport failure), the mean batch the server formed
(from its ``/metrics``), the CPU the server, this client and every other process used,
and the load average before and after. Speeds are reported as ratios to concurrency 1 and
to batching off, both measured in the same run.

Only loopback addresses are accepted: this is a load generator.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from PIL import Image
from rich.console import Console
from rich.table import Table

from benchmarks.common import machine, percentile_ms, write_json
from benchmarks.transforms import TRANSFORMS
from screener import samples

if TYPE_CHECKING:
    import httpx

DEFAULT_OUT = Path("benchmarks/results/http")
DEFAULT_CONCURRENCY = (1, 2, 4, 8, 16)
MODES = {"off": False, "on": True}
FLAGGED = frozenset({"review", "block"})
# Settings this benchmark sets itself; a value in the caller's environment would make the
# server use someone else's state.
OWN_VARIABLES = ("SCREENER_DATA_DIR", "SCREENER_DATABASE_URL", "SCREENER_BATCHING")


def _log(message: str) -> None:
    print(f"[http {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


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
    from screener.desk import Desk
    from screener.screening import Screener
    from screener.settings import Settings

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


# the server --------------------------------------------------------------------------------


def check_loopback(host: str) -> str:
    """The host if every address it names is loopback; otherwise ValueError."""
    try:
        addresses = {ipaddress.ip_address(host.strip("[]"))}
    except ValueError:
        if host != "localhost":
            raise ValueError(f"refusing host {host!r}: give a loopback address") from None
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError as exc:
            raise ValueError(f"cannot resolve {host!r}: {exc}") from None
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    if not addresses or not all(a.is_loopback for a in addresses):
        raise ValueError(f"refusing host {host!r}: only loopback addresses are load-tested")
    return host.strip("[]")


def free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass
class Server:
    """A ``screener serve`` child process and where its log goes."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    ready: dict[str, Any] = field(default_factory=dict)
    start_s: float = 0.0

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def server_env(data_dir: Path, batching: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OWN_VARIABLES}
    env["SCREENER_DATA_DIR"] = str(data_dir)
    env["SCREENER_BATCHING"] = "true" if batching else "false"
    return env


def start_server(
    data_dir: Path, batching: bool, host: str, log: Path, start_timeout: float
) -> Server:
    """Start ``screener serve`` on a free port and wait until ``/readyz`` says ready."""
    import httpx

    port = free_port(host)
    command = [sys.executable, "-m", "screener", "serve", "--host", host, "--port", str(port)]
    started = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, env=server_env(data_dir, batching), stdout=sink, stderr=subprocess.STDOUT
        )
    server = Server(process, _base_url(host, port), log)
    deadline = started + start_timeout
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"screener serve exited with {process.returncode} before it was ready:\n"
                    + server.log_tail()
                )
            if time.perf_counter() > deadline:
                stop_server(server)
                raise RuntimeError(f"screener serve not ready after {start_timeout:.0f} s")
            try:
                answer = client.get(f"{server.url}/readyz")
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            if answer.status_code == 200:
                server.ready = answer.json().get("detail", {})
                break
            if answer.status_code == 503 and answer.json().get("status") == "failed":
                stop_server(server)
                raise RuntimeError(f"screener serve failed to start: {answer.json()}")
            time.sleep(0.2)
    server.start_s = round(time.perf_counter() - started, 2)
    return server


def stop_server(server: Server, grace: float = 30.0) -> dict[str, Any]:
    """SIGTERM, then SIGKILL if it has not exited within ``grace`` seconds."""
    process = server.process
    how = "already exited"
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        how = "sigterm"
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)
            how = "killed"
    # uvicorn re-raises SIGTERM once it has shut down: an exit code of -15 is normal
    return {"signal": how, "exit_code": process.returncode}


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


# the run -----------------------------------------------------------------------------------


def _decision_summary(
    queries: Sequence[Query], outcomes: Sequence[Outcome]
) -> tuple[dict[str, Any], dict[int, set[str]]]:
    seen: dict[int, set[str]] = {}
    kinds: dict[str, Counter[str]] = {"copy": Counter(), "unrelated": Counter()}
    right_work = 0
    for o in outcomes:
        if not o.ok or o.decision is None:
            continue
        query = queries[o.query % len(queries)]
        seen.setdefault(o.query % len(queries), set()).add(o.decision)
        kinds[query.kind][o.decision] += 1
        if query.kind == "copy" and o.decision in FLAGGED and o.top_work == query.work:
            right_work += 1
    copies = sum(kinds["copy"].values())
    unrelated = sum(kinds["unrelated"].values())
    summary = {
        "copies_checked": copies,
        "copies_flagged_right_work": right_work,
        "copy_decisions": dict(kinds["copy"]),
        "unrelated_checked": unrelated,
        "unrelated_allowed": kinds["unrelated"]["allow"],
        "unrelated_decisions": dict(kinds["unrelated"]),
    }
    return summary, seen


@dataclass
class Mode:
    """One server setting under test: its server, its report and every outcome."""

    name: str
    server: Server
    report: dict[str, Any]
    outcomes: list[Outcome] = field(default_factory=list)


def _warm(
    mode: Mode, key: str, queries: Sequence[Query], top: int, count: int, timeout: float
) -> None:
    warm, warm_s, _ = asyncio.run(
        load(
            mode.server.url,
            key,
            queries,
            concurrency=top,
            requests=count,
            duration=600.0,
            timeout=timeout,
        )
    )
    mode.report["warmup"] = {
        "requests": len(warm),
        "concurrency": top,
        "errors": sum(not o.ok for o in warm),
        "elapsed_s": round(warm_s, 2),
    }


def _stop(mode: Mode) -> None:
    mode.report["stop"] = stop_server(mode.server)
    text = mode.server.log_tail(10_000_000)
    mode.report["stop"]["graceful"] = "Application shutdown complete" in text
    mode.report["server_log_errors"] = sum(
        '"level": "error"' in line or '"level": "critical"' in line for line in text.splitlines()
    )


def run_modes(
    prepared: Path,
    scratch: Path,
    key: str,
    queries: Sequence[Query],
    *,
    host: str,
    concurrency: Sequence[int],
    requests: int,
    duration: float,
    warmup: int,
    timeout: float,
    start_timeout: float,
) -> dict[str, Mode]:
    """Start one server per setting, each on its own copy of the prepared data, and warm
    each; then run every concurrency level on both, back to back, the order alternating
    from level to level. The idle server costs no CPU, and interleaving keeps a change in
    the machine's other load from landing on one setting only."""
    modes: dict[str, Mode] = {}
    try:
        for name, batching in MODES.items():
            data_dir = scratch / f"data-{name}"
            shutil.copytree(prepared, data_dir)
            _log(f"batching {name}: starting screener serve")
            server = start_server(
                data_dir, batching, host, scratch / f"server-{name}.log", start_timeout
            )
            modes[name] = Mode(
                name,
                server,
                {"batching": batching, "start_s": server.start_s, "readyz": server.ready},
            )
            _log(f"batching {name}: ready in {server.start_s} s at {server.url}; warming up")
            _warm(modes[name], key, queries, max(concurrency), warmup, timeout)
        for mode in modes.values():
            mode.report["levels"] = []
        for position, c in enumerate(concurrency):
            order = list(modes.values())
            if position % 2:
                order.reverse()
            for mode in order:
                entry, outcomes = asyncio.run(
                    level(
                        mode.server,
                        key,
                        queries,
                        concurrency=c,
                        requests=requests,
                        duration=duration,
                        timeout=timeout,
                    )
                )
                entry["run_order"] = [m.name for m in order].index(mode.name)
                mode.outcomes.extend(outcomes)
                mode.report["levels"].append(entry)
                _log(
                    f"batching {mode.name}, concurrency {c}: {entry['throughput_rps']} req/s, "
                    f"p50 {entry['p50_ms']} ms, p99 {entry['p99_ms']} ms, "
                    f"errors {entry['errors']}, mean batch {entry.get('mean_batch_images')}, "
                    f"other processes {entry.get('other_processes_cores_busy')} cores"
                )
    finally:
        for mode in modes.values():
            _stop(mode)
    for mode in modes.values():
        levels = mode.report["levels"]
        base = levels[0]["throughput_rps"]
        for entry in levels:
            entry["throughput_vs_baseline"] = (
                round(entry["throughput_rps"] / base, 3) if base else None
            )
        mode.report["baseline_concurrency"] = levels[0]["concurrency"]
    return modes


def run(
    *,
    works: int = 20,
    queries_count: int = 40,
    requests: int = 300,
    duration: float = 30.0,
    concurrency: Sequence[int] = DEFAULT_CONCURRENCY,
    warmup: int = 16,
    seed: int = 0,
    host: str = "127.0.0.1",
    timeout: float = 120.0,
    start_timeout: float = 300.0,
    out: Path = DEFAULT_OUT,
    command: str = "",
) -> dict[str, Any]:
    """Run the load for batching off and on; write ``results.json`` and ``http_load.png``."""
    host = check_loopback(host)
    levels = sorted(set(concurrency))
    if not levels or levels[0] < 1:
        raise ValueError("concurrency levels must be positive integers")
    if works < 1 or queries_count < 2 or requests < 1 or duration <= 0:
        raise ValueError("--works, --requests and --duration must be positive, --queries >= 2")
    try:
        import httpx  # noqa: F401
    except ImportError:
        raise ValueError("the HTTP benchmark needs httpx: pip install httpx") from None
    info = machine()
    _log(
        f"machine: {info['cpu']} ({info['cores']} cores), python {info['python']}, "
        f"onnxruntime {info['libraries'].get('onnxruntime')}, "
        f"load average {[round(x, 2) for x in os.getloadavg()]}"
    )
    from service.settings import ServiceSettings

    with tempfile.TemporaryDirectory(prefix="screener-http-") as scratch_name:
        scratch = Path(scratch_name)
        prepared = scratch / "prepared"
        _log(f"registering {works} generated works")
        key, setup = prepare(prepared, works, seed)
        queries = build_queries(works, queries_count, seed)
        setup["queries"] = {
            "count": len(queries),
            "copies": sum(q.kind == "copy" for q in queries),
            "unrelated": sum(q.kind == "unrelated" for q in queries),
            "mean_bytes": round(float(np.mean([len(q.data) for q in queries]))),
        }
        defaults = ServiceSettings(data_dir=prepared, database_url=None)
        setup["service_settings"] = {
            name: getattr(defaults, name)
            for name in ("batch_max", "batch_wait_ms", "regions", "sscd_model", "log_level")
        }
        setup["screener_env"] = {
            k: v
            for k, v in server_env(prepared, True).items()
            if k.startswith("SCREENER_") and k not in OWN_VARIABLES
        }
        ran = run_modes(
            prepared,
            scratch,
            key,
            queries,
            host=host,
            concurrency=levels,
            requests=requests,
            duration=duration,
            warmup=warmup,
            timeout=timeout,
            start_timeout=start_timeout,
        )
    modes = {name: mode.report for name, mode in ran.items()}
    decisions: dict[str, Any] = {}
    seen: dict[str, dict[int, set[str]]] = {}
    for name, mode in ran.items():
        decisions[name], seen[name] = _decision_summary(queries, mode.outcomes)
    both = set(seen["off"]) & set(seen["on"])
    decisions["queries_seen_in_both"] = len(both)
    decisions["queries_decided_differently"] = sorted(
        queries[i].name for i in both if seen["off"][i] != seen["on"][i]
    )
    decisions["queries_inconsistent_within_a_mode"] = sorted(
        queries[i].name for s in seen.values() for i, d in s.items() if len(d) > 1
    )
    comparison = []
    for off, on in zip(modes["off"]["levels"], modes["on"]["levels"], strict=True):
        comparison.append(
            {
                "concurrency": off["concurrency"],
                "throughput_on_over_off": _ratio(on["throughput_rps"], off["throughput_rps"]),
                "p50_on_over_off": _ratio(on["p50_ms"], off["p50_ms"]),
                "p99_on_over_off": _ratio(on["p99_ms"], off["p99_ms"]),
            }
        )
    report: dict[str, Any] = {
        "benchmark": "http",
        "command": command,
        "machine": info,
        "config": {
            "works": works,
            "queries": queries_count,
            "requests_per_level": requests,
            "duration_s_per_level": duration,
            "concurrency": levels,
            "warmup_requests": warmup,
            "seed": seed,
            "host": host,
            "request_timeout_s": timeout,
            "images_per_request": 1,
            "schedule": "both servers up; each level runs on both back to back, the order "
            "alternating from level to level",
        },
        "setup": setup,
        "modes": modes,
        "batching_on_vs_off": comparison,
        "decisions": decisions,
        "machine_load": load_summary(modes),
        "errors_total": sum(e["errors"] for m in modes.values() for e in m["levels"])
        + sum(m["warmup"]["errors"] for m in modes.values()),
        "notes": (
            "Client and server share the machine's cores; other_processes_cores_busy is the "
            "CPU every other process used during a level (from /proc/stat), and the load "
            "averages include this benchmark's own server and client."
        ),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", report)
    _plot(report, out / "http_load.png")
    return report


def load_summary(modes: dict[str, Any]) -> dict[str, Any]:
    """How busy the rest of the machine was while the levels ran."""
    levels = [e for m in modes.values() for e in m["levels"]]
    others = [e["other_processes_cores_busy"] for e in levels if "other_processes_cores_busy" in e]
    loads = [x for e in levels for x in (e["loadavg_before"][0], e["loadavg_after"][0])]
    summary: dict[str, Any] = {
        "cores": os.cpu_count(),
        "loadavg_1min_range": [min(loads), max(loads)] if loads else None,
    }
    if others:
        summary["other_processes_cores_busy_range"] = [min(others), max(others)]
        summary["loaded"] = max(others) >= 0.25
    return summary


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def _plot(report: dict[str, Any], path: Path) -> None:
    from benchmarks.plots import pyplot

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=90)
    for name, colour in (("off", "tab:blue"), ("on", "tab:orange")):
        levels = report["modes"][name]["levels"]
        xs = [e["concurrency"] for e in levels]
        left.plot(xs, _nan([e["throughput_rps"] for e in levels]), "o-", color=colour, label=name)
        right.plot(xs, _nan([e["p99_ms"] for e in levels]), "o-", color=colour, label=f"{name} p99")
        right.plot(
            xs, _nan([e["p50_ms"] for e in levels]), "s--", color=colour, label=f"{name} p50"
        )
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(report["config"]["concurrency"], report["config"]["concurrency"])
        ax.set_xlabel("concurrent clients")
        ax.grid(alpha=0.3)
    left.set_ylim(bottom=0)
    left.set_ylabel("checks / s")
    left.set_title("throughput, micro-batching off / on")
    left.legend(title="batching")
    right.set_ylim(bottom=0)
    right.set_ylabel("latency (ms)")
    right.set_title("latency per request")
    right.legend(fontsize=8, ncol=2)
    cores = report["machine"].get("cores")
    title = f"screener serve on loopback, one image per request ({cores} cores)"
    busy = report.get("machine_load", {}).get("other_processes_cores_busy_range")
    if busy:
        title += f"; other processes busy {busy[0]:.1f}-{busy[1]:.1f} cores meanwhile"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fmt(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.0f}"


def _nan(values: Sequence[float | None]) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def print_summary(report: dict[str, Any], console: Console) -> None:
    table = Table(
        "clients",
        "off req/s",
        "off p50 / p99 ms",
        "off vs c1",
        "on req/s",
        "on p50 / p99 ms",
        "on vs c1",
        "on / off",
        "mean batch (on)",
        "errors",
        "other CPU (cores)",
        title="screener serve under load: micro-batching off / on",
    )
    for off, on, ratio in zip(
        report["modes"]["off"]["levels"],
        report["modes"]["on"]["levels"],
        report["batching_on_vs_off"],
        strict=True,
    ):
        table.add_row(
            str(off["concurrency"]),
            f"{off['throughput_rps']:.2f}",
            f"{_fmt(off['p50_ms'])} / {_fmt(off['p99_ms'])}",
            f"{off['throughput_vs_baseline']}x",
            f"{on['throughput_rps']:.2f}",
            f"{_fmt(on['p50_ms'])} / {_fmt(on['p99_ms'])}",
            f"{on['throughput_vs_baseline']}x",
            f"{ratio['throughput_on_over_off']}x",
            str(on.get("mean_batch_images", "")),
            f"{off['errors']} / {on['errors']}",
            f"{off.get('other_processes_cores_busy', '')} / "
            f"{on.get('other_processes_cores_busy', '')}",
        )
    console.print(table)
    decisions = report["decisions"]
    for name in MODES:
        d = decisions[name]
        console.print(
            f"batching {name}: copies flagged for the right work "
            f"{d['copies_flagged_right_work']}/{d['copies_checked']}, unrelated allowed "
            f"{d['unrelated_allowed']}/{d['unrelated_checked']}",
            highlight=False,
        )
    load = report.get("machine_load", {})
    if load.get("loaded"):
        low, high = load["other_processes_cores_busy_range"]
        console.print(
            f"[yellow]the machine was loaded:[/] other processes kept {low}-{high} of "
            f"{load['cores']} cores busy during the levels (1-min load average "
            f"{load['loadavg_1min_range'][0]}-{load['loadavg_1min_range'][1]})",
            highlight=False,
        )
    console.print(
        f"queries decided differently with batching on: "
        f"{len(decisions['queries_decided_differently'])} of "
        f"{decisions['queries_seen_in_both']}; errors in all: {report['errors_total']}",
        highlight=False,
    )


def command(
    works: Annotated[int, typer.Option(help="generated works registered")] = 20,
    queries: Annotated[
        int, typer.Option(help="distinct query images (half copies, half unrelated)")
    ] = 40,
    requests: Annotated[int, typer.Option(help="most requests per concurrency level")] = 300,
    duration: Annotated[float, typer.Option(help="most seconds per concurrency level")] = 30.0,
    concurrency: Annotated[
        str, typer.Option(help="comma-separated numbers of concurrent clients")
    ] = ",".join(map(str, DEFAULT_CONCURRENCY)),
    warmup: Annotated[int, typer.Option(help="untimed requests after start-up")] = 16,
    seed: Annotated[int, typer.Option(help="draws the works, the edits and the queries")] = 0,
    host: Annotated[str, typer.Option(help="loopback address to serve on")] = "127.0.0.1",
    timeout: Annotated[
        float, typer.Option(help="seconds before a request counts as failed")
    ] = 120.0,
    out: Annotated[Path, typer.Option(help="where results.json and the plot go")] = DEFAULT_OUT,
) -> None:
    """Throughput, latency and errors of `screener serve` on loopback, batching off and on."""
    try:
        levels = [int(c) for c in concurrency.split(",") if c.strip()]
        report = run(
            works=works,
            queries_count=queries,
            requests=requests,
            duration=duration,
            concurrency=levels,
            warmup=warmup,
            seed=seed,
            host=host,
            timeout=timeout,
            out=out,
            command=" ".join(sys.argv),
        )
    except (ValueError, RuntimeError) as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    console = Console(width=max(Console().width, 140))
    print_summary(report, console)
    console.print(f"wrote {out / 'results.json'} and {out / 'http_load.png'}", highlight=False)
    if report["errors_total"]:
        raise typer.Exit(1)
