"""The ``screener serve`` child process the HTTP load benchmark starts, checks and stops."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODES = {"off": False, "on": True}
# Settings this benchmark sets itself; a value in the caller's environment would make the
# server use someone else's state.
OWN_VARIABLES = ("SCREENER_DATA_DIR", "SCREENER_DATABASE_URL", "SCREENER_BATCHING")


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
