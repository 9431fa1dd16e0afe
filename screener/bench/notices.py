"""``screener bench notices``: a notice's re-screening job over N stored checks (issue 20).

The service runs in this process (the real app, its worker thread, SQLite, the real
models). A few real checks go through ``POST /v1/check``: copies of one generated work
(released before the work was registered) and unrelated pictures. The rest of the N
stored checks are padding written straight into the checks tables with SYNTHETIC
fingerprints: random unit vectors for dense signals and random bits for hashes, the whole
image only (real checks also store region fingerprints). Synthetic vectors sit far from
every work, as most released outputs do, so this measures the index search and the
re-scoring of the few candidates, not a re-scoring of everything.

Measured: the old scan (every allowed output re-scored) and the index's re-screening at a
small N (``--scan-checks``) for their ratio; the check index's catch-up with the padding
(at service time it is kept in step as each check is stored); then, at N, the notice's
job wall time (its record's start to finish) and the p50/p99 of ``GET /healthz`` asked
while the job runs (the API answers during the job).
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from PIL import Image
from rich.console import Console
from sqlalchemy import insert

from screener.bench.common import machine, percentile_ms, write_json
from screener.core import samples
from screener.duties.desk import Desk
from screener.service.app import create_app
from screener.service.settings import ServiceSettings
from screener.store.check_records import CheckFingerprintRow, CheckRow

if TYPE_CHECKING:  # imported when the bench runs: importing it warns, and every CLI start
    # (`screener serve` too) imports this module to list the command
    from fastapi.testclient import TestClient

DEFAULT_OUT = Path("benchmarks/results/notices")
IMAGE_SIZE = (400, 300)
_CHUNK = 10_000


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def _jpeg(image: Image.Image, quality: int) -> bytes:
    import io

    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@contextmanager
def _service(data_dir: Path) -> Iterator[tuple[TestClient, Desk, dict[str, str]]]:
    from fastapi.testclient import TestClient

    app = create_app(ServiceSettings(data_dir=data_dir))
    with TestClient(app) as client:
        runtime = app.state.runtime
        if not runtime.wait(600) or not runtime.ready:
            raise RuntimeError(f"the service did not start: {runtime.failure}")
        desk: Desk = runtime.desk
        keys = {
            who: desk.keys.create(role, owner, "bench notices")[1]
            for who, role, owner in (
                ("platform", "platform", "bench-platform"),
                ("holder", "rights_holder", "bench-holder"),
            )
        }
        yield client, desk, {who: f"Bearer {k}" for who, k in keys.items()}


def _pad(desk: Desk, start: int, count: int, seed: int) -> float:
    """Write ``count`` allowed checks with synthetic whole-image fingerprints; seconds."""
    rng = np.random.default_rng(seed + start)
    signals = desk.screener.signals.available
    began = time.perf_counter()
    at = dt.datetime.now(dt.UTC)
    for first in range(start, start + count, _CHUNK):
        n = min(_CHUNK, start + count - first)
        ids = [f"chk_{i:024x}" for i in range(first, first + n)]
        checks = [
            {
                "id": cid,
                "created_at": at,
                "platform": "bench-padding",
                "key_id": "bench",
                "input_sha256": f"{i:064x}",
                "decision": "allow",
                "fused_score": 0.0,
                "verdict": {"synthetic": True},
            }
            for i, cid in zip(range(first, first + n), ids, strict=True)
        ]
        prints: list[dict[str, Any]] = []
        for name, fingerprinter in signals.items():
            if fingerprinter.kind == "binary":
                rows = rng.integers(0, 256, size=(n, fingerprinter.dim // 8), dtype=np.uint8)
            else:
                dense = rng.standard_normal((n, fingerprinter.dim)).astype(np.float32)
                rows = dense / np.linalg.norm(dense, axis=1, keepdims=True)
            prints.extend(
                {
                    "check_id": cid,
                    "signal": name,
                    "spec_id": fingerprinter.spec_id,
                    "region": "whole",
                    "vector": row.tobytes(),
                    "quality": 1.0,
                }
                for cid, row in zip(ids, rows, strict=True)
            )
        with desk.engine.begin() as connection:
            connection.execute(insert(CheckRow), checks)
            connection.execute(insert(CheckFingerprintRow), prints)
    return time.perf_counter() - began


def _wait_job(
    client: TestClient, job_id: str, auth: str, poll_s: float
) -> tuple[dict[str, Any], list[float]]:
    """Ask ``/healthz`` (timed) and the job's state until the job has finished."""
    health: list[float] = []
    while True:
        began = time.perf_counter()
        ok = client.get("/healthz")
        health.append(time.perf_counter() - began)
        if ok.status_code != 200:
            raise RuntimeError(f"/healthz answered {ok.status_code} during the job")
        job: dict[str, Any] = client.get(
            f"/v1/jobs/{job_id}", headers={"Authorization": auth}
        ).json()
        if job["state"] in ("done", "failed"):
            return job, health
        time.sleep(poll_s)


def _seconds(job: dict[str, Any]) -> float:
    started = dt.datetime.fromisoformat(job["started_at"])
    finished = dt.datetime.fromisoformat(job["finished_at"])
    return (finished - started).total_seconds()


def run(
    *, checks: int, scan_checks: int, copies: int, unrelated: int, seed: int, data_dir: Path
) -> dict[str, Any]:
    work = samples.scene(seed, IMAGE_SIZE)
    with _service(data_dir) as (client, desk, auth):
        real: dict[str, list[str]] = {"copies": [], "unrelated": []}
        for i in range(copies):
            image = _jpeg(work, 60 + 5 * (i % 7))
            got = client.post(
                "/v1/check",
                headers={"Authorization": auth["platform"]},
                files=[("images", (f"copy{i}.jpg", image, "image/jpeg"))],
            ).json()
            real["copies"].append(got["results"][0]["check_id"])
        for i in range(unrelated):
            image = _png(samples.scene(seed + 1 + i, IMAGE_SIZE))
            got = client.post(
                "/v1/check",
                headers={"Authorization": auth["platform"]},
                files=[("images", (f"other{i}.png", image, "image/png"))],
            ).json()
            real["unrelated"].append(got["results"][0]["check_id"])
        small = max(0, scan_checks - copies - unrelated)
        pad_s = _pad(desk, 0, small, seed)
        registered = client.post(
            "/v1/works",
            headers={"Authorization": auth["holder"]},
            data={"work_id": "bench-noticed", "title": "noticed work"},
            files=[("images", ("work.png", _png(work), "image/png"))],
        )
        if registered.status_code != 201:
            raise RuntimeError(f"registering the work failed: {registered.text}")
        desk.check_index.catch_up()
        began = time.perf_counter()
        scanned = desk.rescreen_by_scan("bench-noticed")
        scan_s = time.perf_counter() - began
        began = time.perf_counter()
        indexed = desk.rescreen("bench-noticed")
        index_small_s = time.perf_counter() - began
        rest = max(0, checks - copies - unrelated - small)
        pad_s += _pad(desk, small, rest, seed)
        began = time.perf_counter()
        caught_up = desk.check_index.catch_up()
        catch_up_s = time.perf_counter() - began
        sizes = desk.check_index.sizes()
        filed_at = time.perf_counter()
        filed = client.post(
            "/v1/notices",
            headers={"Authorization": auth["holder"]},
            data={"work_id": "bench-noticed", "description": "benchmark"},
        )
        answered_s = time.perf_counter() - filed_at
        if filed.status_code != 201:
            raise RuntimeError(f"filing the notice failed: {filed.text}")
        job, health = _wait_job(client, filed.json()["job"]["job_id"], auth["holder"], 0.05)
        seen_s = time.perf_counter() - filed_at
        if job["state"] != "done":
            raise RuntimeError(f"the job failed: {job['error']}")
        found = set(job["result"]["affected_check_ids"])
        job_s = _seconds(job)
        return {
            "command": " ".join(sys.argv),
            "machine": machine(),
            "synthetic": "padding checks carry synthetic whole-image fingerprints (random "
            "unit vectors, random bits); the copies and unrelated checks are real",
            "checks": checks,
            "real_checks": {"copies": copies, "unrelated": unrelated},
            "signals": sorted(desk.screener.signals.available),
            "padding_write_s": round(pad_s, 2),
            "index_catch_up": {"rows": caught_up, "s": round(catch_up_s, 2), "sizes": sizes},
            "small": {
                "checks": scan_checks,
                "scan_s": round(scan_s, 3),
                "scan_rescored": scanned["rescreened"],
                "index_s": round(index_small_s, 3),
                "index_rescored": indexed["rescreened"],
                "ratio": round(scan_s / index_small_s, 1) if index_small_s else None,
                "same_affected": sorted(a["check_id"] for a in scanned["affected"])
                == sorted(a["check_id"] for a in indexed["affected"]),
                "scan_extrapolated_to_checks_s": round(scan_s * checks / max(scan_checks, 1), 1),
            },
            "job": {
                "wall_s": round(job_s, 3),
                "seen_by_client_s": round(seen_s, 3),
                "notice_answered_s": round(answered_s, 3),
                "candidates": job["result"]["candidate_checks"],
                "rescored": job["result"]["rescreened_checks"],
                "affected": len(found),
                "copies_found": len(found & set(real["copies"])),
                "unrelated_found": len(found & set(real["unrelated"])),
            },
            "health_during_job": {
                "requests": len(health),
                "p50_ms": round(percentile_ms(health, 50), 1),
                "p99_ms": round(percentile_ms(health, 99), 1),
            },
        }


def command(
    checks: Annotated[int, typer.Option(min=10, help="stored checks in all (1M by hand)")] = 20_000,
    scan_checks: Annotated[
        int, typer.Option(min=10, help="stored checks when the old scan is timed (small)")
    ] = 2_000,
    copies: Annotated[int, typer.Option(min=1, help="real released copies of the work")] = 4,
    unrelated: Annotated[int, typer.Option(min=0, help="real unrelated released checks")] = 4,
    seed: Annotated[int, typer.Option()] = 7,
    data_dir: Annotated[
        Path | None, typer.Option(help="an empty folder for the service's state (default: temp)")
    ] = None,
    out: Annotated[Path, typer.Option(help="where notices.json goes")] = DEFAULT_OUT,
) -> None:
    """A notice's re-screening job over N stored checks: its wall time, the old scan's at
    a small N, and /healthz p50 while the job runs (padding fingerprints are synthetic)."""
    if scan_checks > checks:
        raise typer.BadParameter("--scan-checks must not exceed --checks")
    if copies + unrelated > scan_checks:
        raise typer.BadParameter("--scan-checks must hold the real copies and unrelated checks")
    with tempfile.TemporaryDirectory(prefix="bench-notices-") as tmp:
        folder = data_dir or Path(tmp)
        if folder.exists() and any(folder.iterdir()):
            raise typer.BadParameter(f"--data-dir {folder} is not empty")
        report = run(
            checks=checks,
            scan_checks=scan_checks,
            copies=copies,
            unrelated=unrelated,
            seed=seed,
            data_dir=folder,
        )
    write_json(out / "notices.json", report)
    console = Console()
    small, job, health = report["small"], report["job"], report["health_during_job"]
    console.print(report["synthetic"], highlight=False)
    console.print(
        f"at {small['checks']} checks: old scan {small['scan_s']} s ({small['scan_rescored']} "
        f"re-scored), index {small['index_s']} s ({small['index_rescored']} re-scored), "
        f"ratio {small['ratio']}x, same affected: {small['same_affected']}",
        highlight=False,
    )
    console.print(
        f"at {report['checks']} checks: job {job['wall_s']} s ({job['candidates']} candidates, "
        f"{job['affected']} affected, {job['copies_found']}/{report['real_checks']['copies']} "
        f"copies, {job['unrelated_found']} unrelated); the notice answered in "
        f"{job['notice_answered_s']} s; /healthz during the job p50 {health['p50_ms']} ms "
        f"p99 {health['p99_ms']} ms over {health['requests']} requests; index catch-up "
        f"{report['index_catch_up']['s']} s for {report['index_catch_up']['rows']} rows",
        highlight=False,
    )
