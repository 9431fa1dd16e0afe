"""`screener index`: rebuild and verify the vector indexes, export and import them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from screener.cli.common import DataDir, _fail, _guard, _open, err, out, progress_bar
from screener.core.errors import ScreenerError
from screener.core.settings import Settings
from screener.matching import index_archive

app = typer.Typer(help="Rebuild and verify the vector indexes.", no_args_is_help=True)


@app.command("rebuild")
def index_rebuild(data_dir: DataDir = None) -> None:
    """Rebuild every index from the catalog."""
    with _open(data_dir) as screener, progress_bar() as progress:
        for signal in screener.indexes.specs:
            total = len(
                screener.catalog.fingerprint_ids(signal, screener.indexes.specs[signal].spec_id)
            )
            task = progress.add_task(f"rebuilding {signal}", total=total)

            def advance(n: int, t: TaskID = task) -> None:
                progress.advance(t, n)

            size = screener.indexes.rebuild(signal, advance)
            progress.console.print(f"{signal}: {size} vectors", highlight=False)


@app.command("verify")
def index_verify(data_dir: DataDir = None) -> None:
    """Check that every index holds exactly the catalog's fingerprints (exit 1 if not)."""
    with _open(data_dir) as screener:
        reports = screener.indexes.verify()
    table = Table("signal", "structure", "index", "catalog", "missing", "extra", "log mark")
    for r in reports:
        table.add_row(
            r.signal,
            r.kind,
            str(r.count),
            str(r.catalog_count),
            str(r.missing),
            str(r.extra),
            str(r.high_water),
        )
    out.print(table)
    if not all(r.ok for r in reports):
        err.print("[bold red]indexes disagree with the catalog[/]: run `screener index rebuild`")
        raise typer.Exit(1)
    out.print("indexes agree with the catalog")


def _transfer_progress(progress: Progress) -> Callable[[str, int], Callable[[int], None]]:
    def start(description: str, total: int) -> Callable[[int], None]:
        task = progress.add_task(description, total=total)
        return lambda n: progress.advance(task, n)

    return start


@app.command("export")
def index_export(
    file: Annotated[Path, typer.Argument(help="the file to write, e.g. indexes.zip")],
    data_dir: DataDir = None,
) -> None:
    """Write every fingerprint of the indexes (ids, vectors, spec, log position) to FILE."""
    with _open(data_dir) as screener, progress_bar() as progress:
        summary = _guard(
            lambda: index_archive.export_indexes(
                screener.indexes, file, _transfer_progress(progress)
            )
        )
    for signal, (count, mark) in summary.signals.items():
        out.print(f"{signal}: {count} fingerprints at log position {mark}", highlight=False)
    out.print(f"wrote {summary.path}", highlight=False)


@app.command("import")
def index_import(
    file: Annotated[Path, typer.Argument(help="a file written by `screener index export`")],
    data_dir: DataDir = None,
) -> None:
    """Load FILE into the configured index backend (e.g. FAISS files into Milvus).

    The whole file is checked first (digests, specs, agreement with the catalog); a file
    that fails is refused and nothing is written."""
    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    try:  # the indexes are not opened: the file replaces them
        with index_archive.indexes_to_import(settings) as (indexes, missing):
            for name, reason in missing.items():
                err.print(
                    f"[bold yellow]warning:[/] signal [bold]{name}[/] is not in use: "
                    f"{escape(reason)}",
                    highlight=False,
                )
            with progress_bar() as progress:
                summary = index_archive.import_indexes(indexes, file, _transfer_progress(progress))
    except ScreenerError as exc:
        _fail(exc)
    for signal, (count, mark) in summary.signals.items():
        out.print(f"{signal}: {count} fingerprints, log position {mark}", highlight=False)
    for signal in summary.skipped:
        out.print(f"{signal}: not configured here, skipped", highlight=False)
    out.print(f"imported {summary.path}; check with `screener index verify`", highlight=False)
