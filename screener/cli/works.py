"""`screener works`: register, list and remove protected works, and the references
held for an operator."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from screener.cli.common import (
    CLI_ACTOR,
    DataDir,
    HeldId,
    _audit,
    _fail,
    _guard,
    _open,
    err,
    images_in,
    out,
    progress_bar,
)
from screener.core.errors import InputError
from screener.core.territory import codes as territory_codes
from screener.matching import bulk
from screener.store.catalog import HeldReference

app = typer.Typer(help="Register, list and remove protected works.", no_args_is_help=True)


@app.command("import")
def works_import(
    folder: Annotated[Path, typer.Argument(help="one subfolder per work; images inside")],
    owner: Annotated[str, typer.Option(help="owner recorded on every work")] = "",
    batch: Annotated[
        int, typer.Option(min=1, help="works fingerprinted together (one model call per signal)")
    ] = bulk.DEFAULT_BATCH,
    data_dir: DataDir = None,
) -> None:
    """Register one work per subfolder of FOLDER (work id = subfolder name), in batches."""
    if not folder.is_dir():
        _fail(InputError(f"{folder} is not a folder"))
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir())
    if not subfolders:
        _fail(InputError(f"{folder} has no subfolders: put each work's images in its own folder"))
    failures = 0
    with _open(data_dir) as screener, progress_bar() as progress:
        audit = _audit(screener)  # one log for the whole import
        task = progress.add_task("registering works", total=len(subfolders))
        works = (
            bulk.BulkWork(sub.name, tuple(images_in([sub])), owner=owner) for sub in subfolders
        )

        def report(outcome: bulk.BulkOutcome) -> None:
            nonlocal failures
            failures += len(outcome.skipped) + (outcome.error is not None)
            for name, exc in outcome.skipped:
                err.print(f"[red]skipped[/] {outcome.work_id}/{name}: {exc}", highlight=False)
            if outcome.registered is not None:
                result = outcome.registered
                progress.console.print(
                    f"{outcome.work_id}: {len(result.added_references)} reference(s) added, "
                    f"{result.skipped} already registered",
                    highlight=False,
                )
                _print_held(result.held)
            elif outcome.error is not None:
                err.print(f"[red]failed[/] {outcome.work_id}: {outcome.error}", highlight=False)
            progress.advance(task)

        bulk.register_many(
            screener,
            works,
            batch=batch,
            hook=lambda work_id: audit.hook(CLI_ACTOR, "work.register", work_id, {}),
            progress=report,
        )
    if failures:
        raise typer.Exit(1)


@app.command("add")
def works_add(
    work_id: str,
    images: Annotated[list[Path], typer.Argument(help="reference image files or folders")],
    title: Annotated[str | None, typer.Option(help="defaults to the work id")] = None,
    owner: str = "",
    alias: Annotated[
        list[str] | None, typer.Option(help="another name, for prompt screening (repeatable)")
    ] = None,
    related: Annotated[
        list[str] | None,
        typer.Option(
            help="a descriptive term (repeatable): weaker than a name; two of them, or one "
            "beside image evidence, match"
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Register a work (or add references to it) from image files."""
    files = images_in(images)
    with _open(data_dir) as screener:
        result = _guard(
            lambda: screener.registry.register(
                work_id,
                files,
                title=title,
                owner=owner,
                aliases=alias or [],
                related_terms=related or [],
                hook=_audit(screener).hook(CLI_ACTOR, "work.register", work_id, {}),
            )
        )
    out.print(
        f"{result.work.id}: {len(result.added_references)} reference(s) added, "
        f"{result.skipped} already registered ({result.work.reference_count} in all)",
        highlight=False,
    )
    _print_held(result.held)


def _held_reason(held: HeldReference) -> str:
    return "; ".join(str(f.get("reason", "")) for f in held.findings)


def _print_held(held: Sequence[HeldReference]) -> None:
    for h in held:
        err.print(
            f"[yellow]held[/] {h.work_id} #{h.id} {h.source_name}: {_held_reason(h)}; it is not "
            f"screened against until an operator runs `screener works approve {h.work_id} "
            f"{h.id}`",
            highlight=False,
        )


@app.command("held")
def works_held(data_dir: DataDir = None) -> None:
    """List reference images held for an operator, with why."""
    with _open(data_dir) as screener:
        held = screener.catalog.held()
    if not held:
        out.print("no held references")
        return
    table = Table("work", "held id", "image", "owner", "why")
    for h in held:
        table.add_row(h.work_id, str(h.id), h.source_name, h.owner, _held_reason(h))
    out.print(table)


@app.command("territories")
def works_territories(
    work_id: str,
    codes: Annotated[
        list[str] | None,
        typer.Argument(help="ISO 3166-1 alpha-2 codes (e.g. CN HK); none: everywhere"),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Where a work is protected: a check released elsewhere reports a match against it
    (``outside_territory``) without holding the output."""
    found = _guard(lambda: territory_codes(codes or []))
    with _open(data_dir) as screener:
        payload = {"scope": "work", "territories": list(found)}
        _guard(
            lambda: screener.catalog.update_work(
                work_id,
                territories={("work", ""): found},
                hook=_audit(screener).hook(CLI_ACTOR, "work.territories", work_id, payload),
            )
        )
    out.print(f"{work_id}: protected in {', '.join(found) or 'every territory'}", highlight=False)


@app.command("approve")
def works_approve(work_id: str, held_id: HeldId, data_dir: DataDir = None) -> None:
    """Add a held reference image to its work (it is screened against from now on)."""
    with _open(data_dir) as screener:
        result = _guard(
            lambda: screener.registry.approve(
                work_id,
                held_id,
                _audit(screener).hook(
                    CLI_ACTOR, "work.approve_reference", work_id, {"held_id": held_id}
                ),
            )
        )
    out.print(
        f"{work_id}: held reference {held_id} approved ({result.work.reference_count} in all)",
        highlight=False,
    )


@app.command("reject")
def works_reject(work_id: str, held_id: HeldId, data_dir: DataDir = None) -> None:
    """Drop a held reference image: it never becomes part of the work."""
    with _open(data_dir) as screener:
        _guard(
            lambda: screener.registry.reject(
                work_id,
                held_id,
                _audit(screener).hook(
                    CLI_ACTOR, "work.reject_reference", work_id, {"held_id": held_id}
                ),
            )
        )
    out.print(f"{work_id}: held reference {held_id} rejected", highlight=False)


@app.command("list")
def works_list(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    data_dir: DataDir = None,
) -> None:
    """List registered works."""
    with _open(data_dir) as screener:
        works = screener.catalog.list_works()
    if as_json:
        for w in works:
            print(
                json.dumps(
                    {
                        "id": w.id,
                        "title": w.title,
                        "owner": w.owner,
                        "aliases": list(w.aliases),
                        "related_terms": list(w.related_terms),
                        "references": w.reference_count,
                    },
                    ensure_ascii=False,
                )
            )
        return
    if not works:
        out.print("no works registered yet: try `screener works import DIR`")
        return
    table = Table("id", "title", "owner", "aliases", "related terms", "references")
    for w in works:
        table.add_row(
            w.id,
            w.title,
            w.owner,
            ", ".join(w.aliases),
            ", ".join(w.related_terms),
            str(w.reference_count),
        )
    out.print(table)


@app.command("remove")
def works_remove(work_id: str, data_dir: DataDir = None) -> None:
    """Remove a work and all its references."""
    with _open(data_dir) as screener:
        removed = _guard(
            lambda: screener.registry.remove(
                work_id, _audit(screener).hook(CLI_ACTOR, "work.delete", work_id, {})
            )
        )
    out.print(f"removed {work_id} ({removed} fingerprints)", highlight=False)
