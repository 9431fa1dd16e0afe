"""A throwaway Milvus standalone server on loopback, from the ``milvus`` wheel.

It runs the server that the wheel ships (``pip install -e '.[milvus]'``: ``milvus==2.3.5``
with ``pymilvus==2.3.7``) in a temporary base directory of its own, which holds the
unpacked binaries, the configuration, the logs and the data, and is deleted on
:meth:`LocalMilvus.stop`. Every port the server opens is chosen free on 127.0.0.1,
including the embedded etcd's client and peer ports (the wheel leaves the peer port at
etcd's 2380, so two servers on one machine would collide), and the proxy port is the one
clients use. Starting takes about 10 s on a 2-core machine.

The lookup benchmark starts one for its run; the tests start one per session; and
``python -m screener.bench.milvus_server [--port 19530]`` runs one until interrupted, to try
the Milvus backend on one machine (docs/deploy.md).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

START_TIMEOUT_S = 120


class MilvusUnavailable(RuntimeError):
    """The ``milvus`` wheel (the server) or ``pymilvus`` (the client) is not installed."""


class MilvusStartError(RuntimeError):
    """The server was there but did not start (the message holds its log's tail)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """``os.environ`` with ``values`` set while the wheel copies it for the server."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class LocalMilvus:
    """One Milvus standalone server in a temporary directory; use it as a context manager,
    or call :meth:`start` and then :meth:`stop` (idempotent) in a ``finally``."""

    def __init__(self, port: int | None = None, *, prompt_handoff: bool = False) -> None:
        """``port``: the proxy port clients use (default: a free one).

        ``prompt_handoff``: the query coordinator looks for newly sealed segments every
        second instead of Milvus's 10 s, so that a flushed collection is served from its
        sealed, indexed segments about 10 s sooner (for tests; benchmarks keep Milvus's
        default).
        """
        try:
            import milvus
            import pymilvus  # noqa: F401 - the client its users will need
        except ImportError as exc:
            raise MilvusUnavailable(
                f"{exc.name} is not installed (pip install -e '.[milvus]')"
            ) from exc
        self._module: Any = milvus
        self._server: Any = None
        self._base: Path | None = None
        self.port: int | None = None
        self._fixed_port = port
        self._prompt_handoff = prompt_handoff

    @property
    def uri(self) -> str:
        if self.port is None:
            raise MilvusStartError("the server is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base(self) -> Path:
        if self._base is None:
            raise MilvusStartError("the server is not started")
        return self._base

    @property
    def pid(self) -> int | None:
        """The server process's id (for measuring its memory), None when not running."""
        proc = getattr(self._server, "server_proc", None)
        return None if proc is None else int(proc.pid)

    def rss_bytes(self) -> int | None:
        """The server process's resident memory now, from /proc (None where unreadable)."""
        if self.pid is None:
            return None
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
        return None

    def start(self, attempts: int = 2) -> None:
        """Unpack and start the server; returns once its health check answers."""
        if self._server is not None:
            raise MilvusStartError("the server is already started")
        for attempt in range(1, attempts + 1):
            atexit.register(self.stop)
            self._base = Path(tempfile.mkdtemp(prefix="screener-milvus-"))
            server = self._module.MilvusServer(wait_for_started=False)
            server.set_base_dir(str(self._base))
            server.listen_port = self._fixed_port or free_port()
            etcd_port = free_port()
            server.config.set("etcd_port", etcd_port)
            if self._prompt_handoff:  # a key the wheel's template lacks, so added to it
                config = server.config
                config.template_text = re.sub(
                    r"^queryCoord:\n",
                    "queryCoord:\n  updateNextTargetInterval: 1\n",
                    config.template_text,
                    count=1,
                    flags=re.MULTILINE,
                )
            self._server = server
            try:
                with _environment(ETCD_CONFIG_PATH=str(self._etcd_config(etcd_port))):
                    server.start()
                server.wait_started(timeout=START_TIMEOUT_S * 1000)
            except (OSError, RuntimeError, TimeoutError) as exc:
                # Another process may have taken one of the ports chosen above.
                message = f"Milvus did not start: {exc}\n{self._log_tail()}"
                self.stop()
                if attempt == attempts:
                    raise MilvusStartError(message) from exc
                continue
            self.port = int(server.listen_port)
            return

    def _etcd_config(self, client_port: int) -> Path:
        """The embedded etcd's own settings, every port free."""
        client = f"http://127.0.0.1:{client_port}"
        peer = f"http://127.0.0.1:{free_port()}"
        path = self.base / "embed-etcd.yaml"
        path.write_text(
            f"listen-client-urls: {client}\n"
            f"advertise-client-urls: {client}\n"
            f"listen-peer-urls: {peer}\n"
            f"initial-advertise-peer-urls: {peer}\n"
            f"initial-cluster: default={peer}\n"
        )
        return path

    def stop(self) -> None:
        """Stop the server (if it runs) and delete its directory. Safe to call at any time."""
        server, base = self._server, self._base
        self._server, self._base, self.port = None, None, None
        if server is not None:
            with contextlib.suppress(OSError, RuntimeError):
                server.stop()
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)
        atexit.unregister(self.stop)

    def _log_tail(self, lines: int = 30) -> str:
        if self._base is None:
            return ""
        tail: list[str] = []
        for name in ("milvus-stderr.log", "milvus-stdout.log"):
            with contextlib.suppress(OSError):
                tail += (self._base / "logs" / name).read_text(errors="replace").splitlines()
        return "server log:\n" + "\n".join(tail[-lines:]) if tail else ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Run a throwaway server until Ctrl-C (or SIGTERM); its data goes with it."""
    import argparse
    import signal
    import threading

    parser = argparse.ArgumentParser(
        prog="python -m screener.bench.milvus_server",
        description="A throwaway Milvus standalone server on 127.0.0.1 (every other port "
        "free, data in a temporary folder deleted on exit).",
    )
    parser.add_argument("--port", type=int, default=None, help="proxy port (default: free)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # also when started in the background
        signal.signal(sig, lambda *_: stop.set())
    try:
        with LocalMilvus(args.port) as server:
            print(f"Milvus at {server.uri} (data in {server.base}); Ctrl-C stops it", flush=True)
            stop.wait()
    except (MilvusUnavailable, MilvusStartError) as exc:
        print(f"error: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
