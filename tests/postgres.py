"""A throwaway PostgreSQL server for the tests, on loopback only.

It runs the binaries of Debian's ``postgresql`` package (``initdb``, ``pg_ctl``), found on
``PATH`` or under ``/usr/lib/postgresql/<version>/bin`` (the newest version). PostgreSQL
refuses to run as root, so when the tests run as root (CI, containers) the server runs as the
``postgres`` system user, in a data directory under ``/tmp`` made for it and owned by it.

The server listens on 127.0.0.1 and a free port only, trusts every local connection, and runs
with ``fsync`` off: it holds test data and nothing else, and is deleted on :meth:`stop`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.needs import apt_command
from tests.servers import ServerContext, free_port

DEBIAN_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"  # the database role; also the system user the server runs as under root
SYSTEM_USER = "postgres"
START_TIMEOUT_S = 60
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries (or the system user to run them as) are not there."""


class PostgresError(RuntimeError):
    """The server could not be set up, started or used."""


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.name)) or (-1,)


def find_bin_dir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres`` of one version."""
    tried: list[str] = []
    on_path = shutil.which("initdb")
    if on_path is not None:
        # Debian puts only symlinks (if anything) on PATH; the real directory holds the rest.
        candidate = Path(on_path).resolve().parent
        tried.append(str(candidate))
        if _complete(candidate):
            return candidate
    else:
        tried.append("initdb on PATH")
    versions = sorted(DEBIAN_ROOT.glob("*/bin"), key=lambda p: _version_key(p.parent))
    for candidate in reversed(versions):
        tried.append(str(candidate))
        if _complete(candidate):
            return candidate
    if not versions:
        tried.append(f"{DEBIAN_ROOT}/*/bin")
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; looked at: "
        + ", ".join(tried)
        + f". Install them with: {apt_command('postgresql')}"
    )


def _complete(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))


class PostgresServer(ServerContext):
    """One PostgreSQL server in a temporary directory; :meth:`stop` removes every trace.

    Use it as a context manager, or call :meth:`start` and then :meth:`stop` in a
    ``finally`` (``stop`` is idempotent and also cleans up after a failed ``start``).
    """

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir if bin_dir is not None else find_bin_dir()
        self.port: int | None = None
        self._base: Path | None = None
        self._as_user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._as_user = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root, and PostgreSQL refuses to run as root, but there is no "
                    f"{SYSTEM_USER!r} system user to run it as. Debian's postgresql package "
                    f"creates it: {apt_command('postgresql')}"
                ) from None
            if shutil.which("runuser") is None and shutil.which("su") is None:
                raise PostgresUnavailable(
                    f"running as root, and neither runuser nor su is there to run PostgreSQL "
                    f"as {SYSTEM_USER!r}"
                )

    # paths --------------------------------------------------------------------------------

    @property
    def base(self) -> Path:
        if self._base is None:
            raise PostgresError("the server is not started")
        return self._base

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "run"

    @property
    def log_file(self) -> Path:
        return self.base / "server.log"

    # life cycle ---------------------------------------------------------------------------

    def start(self, attempts: int = 3) -> None:
        """Create a cluster and start the server; waits until it accepts connections."""
        if self._base is not None:
            raise PostgresError("the server is already started")
        # Under root, pytest's temporary directories sit below root-only (0700) parents that
        # the postgres user cannot enter: use a directory of its own under /tmp instead.
        parent = "/tmp" if self._as_user is not None else None
        self._base = Path(tempfile.mkdtemp(prefix="screener-pg-", dir=parent))
        atexit.register(self.stop)
        try:
            self.socket_dir.mkdir()
            if self._as_user is not None:
                for path in (self.base, self.socket_dir):
                    os.chown(path, self._as_user.pw_uid, self._as_user.pw_gid)
            self._run(
                "initdb",
                "--pgdata",
                str(self.data_dir),
                "--username",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
            for attempt in range(1, attempts + 1):
                self.port = free_port()
                self._configure(self.port)
                try:
                    self._run(
                        "pg_ctl",
                        "--pgdata",
                        str(self.data_dir),
                        "--log",
                        str(self.log_file),
                        "--wait",
                        "--timeout",
                        str(START_TIMEOUT_S),
                        "start",
                        timeout=START_TIMEOUT_S + 10,
                    )
                    return
                except PostgresError:
                    # Another process may have taken the port between choosing and binding.
                    if attempt == attempts or "could not bind" not in self._log_tail():
                        raise
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (if it runs) and delete its directory. Safe to call at any time."""
        base = self._base
        if base is None:
            return
        try:
            if (self.data_dir / "postmaster.pid").exists():
                try:
                    self._run(
                        "pg_ctl",
                        "--pgdata",
                        str(self.data_dir),
                        "--mode",
                        "immediate",
                        "--wait",
                        "stop",
                        timeout=60,
                    )
                except (PostgresError, OSError):
                    self._kill_postmaster()
        finally:
            shutil.rmtree(base, ignore_errors=True)
            self._base = None
            self.port = None
            atexit.unregister(self.stop)

    def _kill_postmaster(self) -> None:
        """Last resort when pg_ctl could not stop it: SIGQUIT to the pid it recorded."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            # Only if that pid is still this server's postmaster, not a reused pid.
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if str(self.data_dir).encode() in cmdline:
                os.kill(pid, signal.SIGQUIT)

    def _configure(self, port: int) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "'32MB'",
            # Containers often give /dev/shm only 64 MB; files in the data directory do.
            "dynamic_shared_memory_type": "mmap",
            "max_connections": "50",
        }
        text = "".join(f"{key} = {value}\n" for key, value in settings.items())
        # postgresql.auto.conf is read last, so its settings win; rewritten on each attempt.
        path = self.data_dir / "postgresql.auto.conf"
        path.write_text(text)
        if self._as_user is not None:
            os.chown(path, self._as_user.pw_uid, self._as_user.pw_gid)

    def _run(self, program: str, *args: str, timeout: float = 120) -> None:
        command = [str(self.bin_dir / program), *args]
        if self._as_user is not None:
            if shutil.which("runuser") is not None:
                command = ["runuser", "-u", SYSTEM_USER, "--", *command]
            else:
                command = ["su", SYSTEM_USER, "-s", "/bin/sh", "-c", shlex.join(command)]
        # The caller's PG* settings (PGDATA, PGPORT, ...) must not reach this server.
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        try:
            done = subprocess.run(
                command,
                cwd=self.base,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(
                f"{program} took more than {timeout:.0f}s\n{self._log_tail()}"
            ) from exc
        if done.returncode != 0:
            raise PostgresError(
                f"{shlex.join(command)} exited with {done.returncode}\n"
                f"{done.stdout}{done.stderr}{self._log_tail()}"
            )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            tail = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "server log:\n" + "\n".join(tail) if tail else ""

    # databases ----------------------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """The SQLAlchemy URL of ``dbname`` on this server (psycopg 3 driver)."""
        if self.port is None:
            raise PostgresError("the server is not started")
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a fresh name when ``name`` is None); return its URL."""
        if name is None:
            name = f"test_{secrets.token_hex(6)}"
        if not _NAME.fullmatch(name):
            raise ValueError(f"database name {name!r} must match {_NAME.pattern}")
        try:
            import psycopg
        except ImportError as exc:
            raise PostgresUnavailable(
                "psycopg is not installed (pip install -e '.[postgres]')"
            ) from exc
        if self.port is None:
            raise PostgresError("the server is not started")
        from psycopg import sql

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)
