"""`screener check`: screen images, with a table or JSON lines and evidence pictures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from screener import models
from screener.cli.common import DataDir, _fail, _guard, _open, err, images_in, out, progress_bar
from screener.core.decode import DecodedImage
from screener.core.errors import InputError, ScreenerError
from screener.core.territory import code as territory_code
from screener.index.atomic import write_atomic
from screener.matching.pipeline import Analysis, Screener


def _row(path: Path, verdict: Any) -> dict[str, Any]:
    top = verdict.top_match
    best = (verdict.matches or verdict.near_misses or (None,))[0]
    return {
        "path": str(path),
        "decision": verdict.decision,
        "fused_score": verdict.fused_score,
        "top_work_id": verdict.top_work_id,
        "signals": dict(best.signals) if best else {},
        "best_region": (None if top is None or top.best_region is None else vars(top.best_region)),
        # What explains a character match (closest references, model score, parts).
        "character": best.character if best else None,
        "verdict": verdict.to_dict(),
    }


def check(
    paths: Annotated[list[Path], typer.Argument(help="image files or folders")],
    prompt: Annotated[str | None, typer.Option(help="the prompt that produced the image")] = None,
    territory: Annotated[
        str | None,
        typer.Option(
            help="where the output is released (ISO 3166-1 alpha-2, e.g. CN); default: everywhere"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    explain: Annotated[
        Path | None,
        typer.Option(
            "--explain",
            help="write an evidence picture (PNG) of the closest work: this file for one "
            "image, or <name>-evidence.png in this folder for several",
            metavar="OUT.png",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Screen images; an unreadable file is reported and the run continues (exit 1 at the end)."""
    files = images_in(paths)
    if not files:
        _fail(InputError("no image files found in the given paths"))
    where = _guard(lambda: territory_code(territory)) if territory is not None else None
    pictures = _picture_paths(files, explain) if explain is not None else {}
    failures = 0
    # One column per signal whose descriptor asks for one, in registration order.
    columns = [d for d in models.descriptors().values() if d.table]
    table = Table("decision", "score", "work", *(d.display for d in columns), "local", "path")
    table.columns[-1].overflow = "fold"
    with _open(data_dir) as screener, progress_bar() as progress:
        task = progress.add_task("checking", total=len(files))
        for path in files:
            try:
                decoded = screener.decode(path)
                analysis = screener.analyse(decoded, prompt, territory=where)
            except ScreenerError as exc:
                failures += 1
                if as_json:
                    print(
                        json.dumps(
                            {"path": str(path), "error": str(exc), "error_code": exc.code},
                            ensure_ascii=False,
                        ),
                        flush=True,
                    )
                else:
                    blanks = [""] * (len(columns) + 3)  # score, work, signals, local
                    table.add_row("[red]error[/]", *blanks, f"{path}: {exc}")
                progress.advance(task)
                continue
            verdict = analysis.verdict
            row = _row(path, verdict)
            if path in pictures:
                row["evidence_picture"] = _write_picture(
                    screener, path, decoded, analysis, pictures[path]
                )
            if as_json:
                print(json.dumps(row, ensure_ascii=False), flush=True)
            else:
                s = row["signals"]
                table.add_row(
                    verdict.decision,
                    f"{verdict.fused_score:.3f}",
                    verdict.top_work_id or "-",
                    *(_fmt(s.get(d.evidence)) for d in columns),
                    _fmt(s.get("local_inliers")),
                    str(path),
                )
            progress.advance(task)
    if not as_json:
        out.print(table)
    if failures:
        raise typer.Exit(1)


def _picture_paths(files: list[Path], explain: Path) -> dict[Path, Path]:
    """Where each image's evidence picture goes: ``explain`` itself for one image, a
    file per image inside the folder ``explain`` for several."""
    if len(files) == 1 and not explain.is_dir():
        if explain.suffix.lower() != ".png":
            _fail(InputError(f"--explain {explain}: the picture is a PNG; name it *.png"))
        return {files[0]: explain}
    if explain.exists() and not explain.is_dir():
        _fail(InputError(f"--explain {explain}: with several images, give a folder"))
    explain.mkdir(parents=True, exist_ok=True)
    return {f: explain / f"{f.stem}-evidence.png" for f in files}


def _write_picture(
    screener: Screener, path: Path, decoded: DecodedImage, analysis: Analysis, out_path: Path
) -> str | None:
    """Draw and write one evidence picture; None (and a note) when no work resembles it."""
    verdict = analysis.verdict
    if not (verdict.matches or verdict.licensed or verdict.near_misses):
        err.print(f"{path}: no registered work resembles it; no evidence picture")
        return None
    try:
        picture = screener.picture(decoded, analysis)
        write_atomic(out_path, picture.png)
    except ScreenerError as exc:
        err.print(f"{path}: no evidence picture: {exc}")
        return None
    except OSError as exc:
        _fail(InputError(f"cannot write {out_path}: {exc.strerror or exc}"))
    return str(out_path)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3f}"
