"""What every sub-command shares: the consoles, the error mapping (`_fail`: 2 for bad
input, 3 for configuration problems, 1 for anything else the screener raises on
purpose), opening the screener or the catalog alone, and the options they all take.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.engine import Engine

from screener.core.errors import ConfigurationError, InputError, ScreenerError
from screener.core.settings import Settings
from screener.matching.pipeline import Screener
from screener.store.audit import AuditLog
from screener.store.catalog import make_engine

CLI_ACTOR = "cli"

out = Console()
err = Console(stderr=True, soft_wrap=True)  # messages stay whole lines for scripts
T = TypeVar("T")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
# A held reference's id, as `works held` lists it (bounded as the catalog's integer ids).
HeldId = Annotated[int, typer.Argument(min=1, max=2**31 - 1, help="id from `works held`")]
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="SCREENER_DATA_DIR",
        help="where state lives",
        show_default="screener-data",
    ),
]


def _fail(exc: Exception) -> NoReturn:
    code = 2 if isinstance(exc, InputError) else 3 if isinstance(exc, ConfigurationError) else 1
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(code)


def _guard(action: Callable[[], T]) -> T:
    try:
        return action()
    except ScreenerError as exc:
        _fail(exc)


@contextmanager
def _open(data_dir: Path | None) -> Iterator[Screener]:
    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    screener = _guard(lambda: Screener(settings))
    for name, reason in screener.signals.missing.items():
        err.print(
            f"[bold yellow]warning:[/] signal [bold]{name}[/] is not in use: {escape(reason)}",
            highlight=False,
        )
    try:
        yield screener
    finally:
        screener.close()


def _audit(screener: Screener) -> AuditLog:
    return AuditLog(screener.catalog.engine)


@contextmanager
def _engine(data_dir: Path | None) -> Iterator[Engine]:
    """The catalog database alone (no models, no indexes): for keys and the audit log."""
    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def progress_bar(console: Console | None = None) -> Progress:
    """The progress bar the commands show: description, bar, n/m, time left.

    It writes to ``console`` (stderr by default) and stays off when that is not a terminal.
    """
    console = err if console is None else console
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )


def images_in(paths: Sequence[Path]) -> list[Path]:
    """Files as given, and the image files inside folders (recursively, sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            found.append(path)
    return found
