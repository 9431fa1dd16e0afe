"""`screener serve` as a real uvicorn process on loopback, driven over real HTTP.

Keys are made beforehand with `screener keys create` on the same data directory, as an
operator would. The first test screens a copy and an unrelated picture and reads the
server's JSON logs; the second kills the server with SIGKILL in the middle of a burst of
registrations and checks, after a restart, that every work acknowledged with 201 is
there, that the indexes agree with the catalog and that the audit chain verifies.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from screener.core.samples import scene
from tests.servers import free_port
from tests.service.conftest import encode

pytestmark = pytest.mark.slow

READY_TIMEOUT_S = 120
KEYS = {"holder": ("rights_holder", "tsuburaya"), "platform": ("platform", "genco")}
KEYS_ADMIN = {"admin": ("admin", "ops")}


def screener_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "screener", *args]


def environment(data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SCREENER_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
    }


def cli(data_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        screener_command(*args),
        env=environment(data_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def make_keys(data_dir: Path, people: dict[str, tuple[str, str]]) -> dict[str, str]:
    """A key for each person, made with the CLI before the server starts."""
    keys = {}
    for who, (role, owner) in people.items():
        done = cli(data_dir, "keys", "create", "--role", role, "--owner", owner)
        assert done.returncode == 0, done.stderr
        keys[who] = done.stdout.strip().splitlines()[-1]
    return keys


@dataclass
class Server:
    """One `screener serve` process; stderr (the JSON log) goes to a file."""

    data_dir: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                screener_command("serve", "--host", "127.0.0.1", "--port", str(self.port)),
                env=environment(self.data_dir),
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        pytest.fail(f"the server was not ready within {READY_TIMEOUT_S} s:\n{self.tail()}")

    def stop(self) -> None:
        """SIGTERM, and assert a graceful shutdown (uvicorn re-raises the signal once it has
        shut the app down, so the exit status is 0 or -SIGTERM)."""
        assert self.process is not None and self.process.poll() is None, self.tail()
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the server did not stop within 60 s of SIGTERM:\n{self.tail()}")
        assert status in (0, -signal.SIGTERM), self.tail()
        assert "Application shutdown complete." in self.tail(10), self.tail()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.lines()[-n:])


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    """Servers a test starts; each is killed at the end whatever happened."""
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


def new_server(servers: list[Server], data_dir: Path, name: str) -> Server:
    server = Server(data_dir, data_dir.parent / f"{name}.log")
    servers.append(server)
    server.start()
    return server


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def png(seed: int, size: tuple[int, int] = (256, 192)) -> bytes:
    return encode(scene(seed, size))


def test_block_with_evidence_and_allow_over_real_http(
    tmp_path: Path, servers: list[Server]
) -> None:
    data_dir = tmp_path / "data"
    keys = make_keys(data_dir, KEYS)
    server = new_server(servers, data_dir, "serve")
    original = scene(8001)

    with httpx.Client(base_url=server.url, timeout=60) as client:
        made = client.post(
            "/v1/works",
            headers=bearer(keys["holder"]),
            data={"work_id": "ultraman", "title": "Ultraman"},
            files=[("images", ("ultraman.png", encode(original), "image/png"))],
        )
        assert made.status_code == 201, made.text

        copy = encode(original, "JPEG", quality=80)
        checked = client.post(
            "/v1/check",
            headers={**bearer(keys["platform"]), "X-Request-ID": "process-test-copy"},
            data={"prompt": "a giant hero"},
            files=[("images", ("copy.jpg", copy, "image/jpeg"))],
        )
        assert checked.status_code == 200, checked.text
        assert checked.headers["x-request-id"] == "process-test-copy"
        (blocked,) = checked.json()["results"]
        assert blocked["decision"] == "block", blocked
        assert blocked["verdict"]["top_work_id"] == "ultraman"

        evidence = client.get(
            f"/v1/checks/{blocked['check_id']}/evidence", headers=bearer(keys["platform"])
        )
        assert evidence.status_code == 200, evidence.text
        text = evidence.text
        assert "ultraman" in text and "Ultraman" in text
        assert evidence.headers["x-request-id"]

        unrelated = client.post(
            "/v1/check",
            headers=bearer(keys["platform"]),
            files=[("images", ("other.png", png(8002), "image/png"))],
        )
        assert unrelated.status_code == 200, unrelated.text
        assert unrelated.json()["results"][0]["decision"] == "allow"
        generated_id = unrelated.headers["x-request-id"]
        assert len(generated_id) == 32

        refused = client.get("/v1/works", headers=bearer("sk_not_a_key"))
        assert refused.status_code == 401
        assert refused.json()["request_id"] == refused.headers["x-request-id"]

    server.stop()

    entries = []
    for line in server.lines():
        if line.strip():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"a log line is not JSON: {line!r}")
    requests = [e for e in entries if e.get("msg") == "request"]
    assert requests, "no access log lines"
    assert all(e.get("request_id") for e in requests), requests
    by_id = {e["request_id"]: e for e in requests}
    assert by_id["process-test-copy"]["path"] == "/v1/check"
    assert by_id["process-test-copy"]["status"] == 200
    assert by_id[generated_id]["status"] == 200
    assert any(e.get("status") == 401 for e in requests)
    assert any(e.get("msg") == "ready" for e in entries)


@dataclass
class Burst:
    """Registrations from several threads; the ids the server acknowledged with 201."""

    url: str
    key: str
    acked: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def worker(self, thread: int, images: list[bytes]) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            for n, image in enumerate(images):
                if self.stop.is_set():
                    return
                work_id = f"burst-{thread}-{n}"
                try:
                    response = client.post(
                        "/v1/works",
                        headers=bearer(self.key),
                        data={"work_id": work_id},
                        files=[("images", (f"{work_id}.png", image, "image/png"))],
                    )
                except httpx.TransportError:
                    return  # the server died under us: the request was never acknowledged
                if response.status_code == 201:
                    with self.lock:
                        self.acked.add(work_id)
                else:
                    with self.lock:
                        self.errors.append(f"{work_id}: {response.status_code} {response.text}")


def test_sigkill_during_a_burst_of_registrations_loses_no_acknowledged_work(
    tmp_path: Path, servers: list[Server]
) -> None:
    data_dir = tmp_path / "data"
    keys = make_keys(data_dir, {**KEYS, **KEYS_ADMIN})
    server = new_server(servers, data_dir, "first")

    threads, per_thread, kill_after = 4, 30, 10
    images = [[png(1000 * t + n, (160, 120)) for n in range(per_thread)] for t in range(threads)]
    burst = Burst(server.url, keys["holder"])
    workers = [
        threading.Thread(target=burst.worker, args=(t, images[t]), daemon=True)
        for t in range(threads)
    ]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 240
    while len(burst.acked) < kill_after and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(server.pid, signal.SIGKILL)  # with the other threads' requests in flight
    burst.stop.set()
    for w in workers:
        w.join(timeout=120)
    assert not burst.errors, burst.errors
    acked = set(burst.acked)
    assert len(acked) >= kill_after, f"only {len(acked)} acknowledged before the deadline"
    assert len(acked) < threads * per_thread, "the burst finished before the kill"

    restarted = new_server(servers, data_dir, "second")
    with httpx.Client(base_url=restarted.url, timeout=60) as client:
        for work_id in sorted(acked):
            got = client.get(f"/v1/works/{work_id}", headers=bearer(keys["holder"]))
            assert got.status_code == 200, f"acknowledged work {work_id} lost: {got.text}"
            assert got.json()["reference_count"] == 1
        page = client.get("/v1/works", params={"limit": 500}, headers=bearer(keys["admin"]))
        listed = {w["work_id"] for w in page.json()["items"]}
        assert acked <= listed
        verify = client.get("/v1/audit/verify", headers=bearer(keys["admin"]))
        assert verify.status_code == 200, verify.text
        assert verify.json()["ok"], verify.json()
        # Still screens: a copy of an acknowledged work is blocked.
        thread, n = (int(p) for p in sorted(acked)[0].split("-")[1:])
        checked = client.post(
            "/v1/check",
            headers=bearer(keys["platform"]),
            files=[("images", ("c.png", images[thread][n], "image/png"))],
        )
        assert checked.json()["results"][0]["decision"] == "block", checked.text
    restarted.stop()

    indexes = cli(data_dir, "index", "verify")
    assert indexes.returncode == 0, indexes.stdout + indexes.stderr
    assert "indexes agree with the catalog" in indexes.stdout
    if cli(data_dir, "audit", "--help").returncode == 0:
        audit = cli(data_dir, "audit", "verify")
        assert audit.returncode == 0, audit.stdout + audit.stderr
