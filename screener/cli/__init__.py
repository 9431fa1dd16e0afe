"""The ``screener`` command line: one module per sub-app, put together here.

Errors are mapped to messages and exit codes in one place (:func:`screener.cli.common._fail`):
2 for bad input, 3 for configuration problems, 1 for anything else the screener raises on
purpose. Options every command understands (``--data-dir``, ``--verbose``) go before the
subcommand, as with ``git -C``; ``--data-dir`` may also follow it, and then that one wins.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from screener.cli import audit, background, index, keys, policy, works
from screener.cli.check import check
from screener.cli.common import IMAGE_SUFFIXES, DataDir, _open, err, images_in, out, progress_bar
from screener.cli.prompt import prompt_check

__all__ = ["IMAGE_SUFFIXES", "app", "images_in", "main", "progress_bar"]

app = typer.Typer(
    help="Screen generated images against registered protected works.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(works.app, name="works")
app.add_typer(index.app, name="index")
app.add_typer(background.app, name="background")
app.add_typer(policy.app, name="policy")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.command("prompt")(prompt_check)
app.command()(check)


def _set_for_this_run(ctx: typer.Context, name: str, value: str) -> None:
    """Set an environment variable until this command line ends. Every subcommand (and
    every plugin, such as ``serve``) then reads it as if the user had set it, and an option
    given after the subcommand still wins, since an option given beats its variable."""
    before = os.environ.get(name)
    os.environ[name] = value

    def restore() -> None:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before

    ctx.call_on_close(restore)


@app.callback()
def _main(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="where state lives, for any subcommand (as SCREENER_DATA_DIR; "
            "a --data-dir after the subcommand wins)",
            show_default="screener-data",
        ),
    ] = None,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if data_dir is not None:
        _set_for_this_run(ctx, "SCREENER_DATA_DIR", str(data_dir))


def _plugins() -> None:
    """Sub-commands from packages above this one, found by entry point (``screener.commands``)."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="screener.commands"):
        try:
            plugin = entry.load()
        except Exception as exc:  # a broken plugin must not take the core commands down
            err.print(f"[yellow]warning:[/] `screener {entry.name}` unavailable: {exc}")
            continue
        app.add_typer(plugin, name=entry.name)


def main(argv: Sequence[str] | None = None) -> None:
    _plugins()
    try:
        app(args=list(argv) if argv is not None else None, prog_name="screener")
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


@app.command()
def demo(
    data_dir: DataDir = None,
    seed: Annotated[int, typer.Option(help="draws other works and queries")] = 0,
) -> None:
    """Register generated works, screen copies and unrelated images, and report."""
    from screener.cli.demo_suite import run as run_demo

    table = Table("query", "expected", "decision", "score", "top work", "ok")
    with _open(data_dir) as screener, progress_bar() as progress:
        task = progress.add_task("screening", total=None)
        rows = run_demo(screener, seed=seed, on_row=lambda _r: progress.advance(task))
        used = ", ".join(screener.signals.names)
    for r in rows:
        table.add_row(
            r.query,
            r.expected or "-",
            r.decision,
            f"{r.fused_score:.3f}",
            r.top_work_id or "-",
            "[green]yes[/]" if r.correct else "[red]NO[/]",
        )
    out.print(table)
    copies = [r for r in rows if r.expected]
    others = [r for r in rows if not r.expected]
    out.print(f"signals used: {used}", highlight=False)
    out.print(
        f"copies caught with the right work: {sum(r.correct for r in copies)}/{len(copies)}; "
        f"unrelated images allowed: {sum(r.correct for r in others)}/{len(others)}",
        highlight=False,
    )
    if not all(r.correct for r in rows):
        raise typer.Exit(1)
