"""What the tests need from the machine, and what happens when a part is missing.

Outside CI a test whose part is missing (Debian's chromium or PostgreSQL, an extra's
package, the peer images) is skipped, and its reason ends with the exact command that
installs the part. Under ``CI=true`` (``.ci/run`` sets it) the same test fails with that
message: a skip there would let the suite pass without running what it claims to run.
"""

from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from screener.matching.explain import FontFile
    from tests.postgres import PostgresServer

# The README's install: what puts every Python package the tests use in place.
PIP_INSTALL = ".venv/bin/pip install -c constraints.txt -e '.[all,dev]'"


def in_ci() -> bool:
    """``CI`` is set to a true value (``true``, ``1``, ``yes``), as CI services set it."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def apt_command(*packages: str) -> str:
    """The command that installs Debian ``packages`` here (with sudo unless root)."""
    sudo = "" if os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get update && {sudo}apt-get install -y --no-install-recommends " + " ".join(
        packages
    )


def missing(reason: str) -> NoReturn:
    """Skip the caller outside CI, fail it under CI; ``reason`` says what to install."""
    if in_ci():
        pytest.fail(f"CI cannot skip this: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def chromium() -> str:
    """The path of Debian's chromium, which the console's browser tests drive."""
    path = shutil.which("chromium")
    if path is None:
        missing(
            "Debian's chromium (for the console's browser tests) is not installed. "
            f"Install it with: {apt_command('chromium')}"
        )
    return path


def module(name: str, extra: str) -> ModuleType:
    """Import ``name``, which the project's ``extra`` installs."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing(f"{name} cannot be imported ({exc}); the {extra} extra installs it: {PIP_INSTALL}")


def postgres_server() -> PostgresServer:
    """A PostgreSQL server (not started yet) from Debian's binaries, with psycopg."""
    from tests.postgres import PostgresServer, PostgresUnavailable

    module("psycopg", "postgres")
    try:
        return PostgresServer()
    except PostgresUnavailable as exc:
        missing(str(exc))


def cjk_font() -> FontFile:
    """The CJK font evidence pictures caption in (the service extra's noto-cjk-sans-otc)."""
    from screener.matching.explain import caption_font_file

    found = caption_font_file()
    if found is None:
        missing(
            "no CJK font for evidence captions: the service extra installs noto-cjk-sans-otc "
            f"({PIP_INSTALL}); Debian's fonts-noto-cjk also serves "
            f"({apt_command('fonts-noto-cjk')})"
        )
    return found
