"""`screener background`: build and show the bank of generic images that
normalises SSCD scores."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from screener.cli.common import DataDir, _fail, _guard, _open, err, images_in, out, progress_bar
from screener.core.errors import InputError

app = typer.Typer(
    help="The background bank of generic images that normalises SSCD scores.",
    no_args_is_help=True,
)


@app.command("build")
def background_build(
    folders: Annotated[list[Path], typer.Argument(help="folders (or files) of generic images")],
    limit: Annotated[
        int, typer.Option(min=1, help="use at most this many images (sorted by path)")
    ] = 5000,
    data_dir: DataDir = None,
) -> None:
    """Build (or refresh) the background bank from generic images: pictures of the kinds
    the platform generates, never the registered works (images matching one are left
    out). The new bank replaces the old one only when complete."""
    files = images_in(folders)[:limit]
    if not files:
        _fail(InputError("no image files found in the given paths"))
    with _open(data_dir) as screener, progress_bar() as progress:
        task = progress.add_task("fingerprinting", total=len(files))
        report = _guard(
            lambda: screener.build_background(
                files,
                source=", ".join(str(f) for f in folders),
                progress=lambda n: progress.advance(task, n),
            )
        )
        version = screener.index_version()
    for line in report.unreadable:
        err.print(f"skipped {line}", highlight=False, markup=False)
    out.print(
        f"background bank: {report.count} images ({report.registered} left out as copies of "
        f"registered works, {len(report.unreadable)} unreadable) in {report.folder}; "
        f"index version now {version}",
        highlight=False,
    )


@app.command("show")
def background_show(data_dir: DataDir = None) -> None:
    """Say which background bank is in use."""
    with _open(data_dir) as screener:
        bank = screener.background
        if bank is None:
            out.print(
                "no background bank: sscd_norm_cosine and the works' generic levels are "
                "not computed (build one with `screener background build DIR`)"
            )
            return
        levels = (
            f"generic levels for {', '.join(sorted(bank.rows))}"
            if bank.rows
            else "no generic levels (an older bank: rebuild it)"
        )
        out.print(
            f"{bank.count} images, {bank.spec_id}, sha256 {bank.digest[:12]}, built "
            f"{bank.built_at} from {bank.source}; {levels}",
            highlight=False,
            markup=False,
        )
