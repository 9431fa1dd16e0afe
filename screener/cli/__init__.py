"""The ``screener`` command line.

Errors are mapped to messages and exit codes in one place (`_fail`): 2 for bad input,
3 for configuration problems, 1 for anything else the screener raises on purpose.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from sqlalchemy.engine import Engine

from screener.core import policy as policy_mod
from screener.core import territory as territory_mod
from screener.core.decode import DecodedImage
from screener.core.errors import ConfigurationError, InputError, ScreenerError
from screener.core.settings import Settings
from screener.matching import index_archive as transfer
from screener.matching import registrability
from screener.matching.pipeline import Analysis, Screener
from screener.store.audit import Anchor, AuditLog
from screener.store.catalog import Catalog, HeldReference, make_engine
from screener.store.keys import KeyStore, Role

app = typer.Typer(
    help="Screen generated images against registered protected works.",
    no_args_is_help=True,
    add_completion=False,
)
works_app = typer.Typer(help="Register, list and remove protected works.", no_args_is_help=True)
index_app = typer.Typer(help="Rebuild and verify the vector indexes.", no_args_is_help=True)
policy_app = typer.Typer(help="Show and validate policy files.", no_args_is_help=True)
app.add_typer(works_app, name="works")
app.add_typer(index_app, name="index")
background_app = typer.Typer(
    help="The background bank of generic images that normalises SSCD scores.",
    no_args_is_help=True,
)
app.add_typer(background_app, name="background")
app.add_typer(policy_app, name="policy")
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
audit_app = typer.Typer(help="Read and verify the audit log.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
CLI_ACTOR = "cli"
MAX_PROMPT = 2000  # as the service takes

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


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
    )


# works ------------------------------------------------------------------------------------------


@works_app.command("import")
def works_import(
    folder: Annotated[Path, typer.Argument(help="one subfolder per work; images inside")],
    owner: Annotated[str, typer.Option(help="owner recorded on every work")] = "",
    data_dir: DataDir = None,
) -> None:
    """Register one work per subfolder of FOLDER (work id = subfolder name)."""
    if not folder.is_dir():
        _fail(InputError(f"{folder} is not a folder"))
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir())
    if not subfolders:
        _fail(InputError(f"{folder} has no subfolders: put each work's images in its own folder"))
    failures = 0
    with _open(data_dir) as screener, progress_bar() as progress:
        audit = _audit(screener)  # one log for the whole import
        task = progress.add_task("registering works", total=len(subfolders))
        for sub in subfolders:
            images = images_in([sub])
            good: list[Path] = []
            rules = screener.policy.registration
            for image in images:
                try:
                    decoded = screener.decode(image)
                    # One image with too little content would fail its whole work: skip it.
                    content = registrability.content_findings(
                        registrability.measure(decoded, rules), rules
                    )
                    if content:
                        raise registrability.refuse(image.name, content)
                    good.append(image)
                except ScreenerError as exc:
                    failures += 1
                    err.print(f"[red]skipped[/] {image}: {exc}", highlight=False)
            if good:
                try:
                    result = screener.registry.register(
                        sub.name,
                        good,
                        owner=owner,
                        hook=audit.hook(CLI_ACTOR, "work.register", sub.name, {}),
                    )
                    progress.console.print(
                        f"{sub.name}: {len(result.added_references)} reference(s) added, "
                        f"{result.skipped} already registered",
                        highlight=False,
                    )
                    _print_held(result.held)
                except ScreenerError as exc:
                    failures += 1
                    err.print(f"[red]failed[/] {sub.name}: {exc}", highlight=False)
            else:
                err.print(f"[yellow]no usable images[/] in {sub}", highlight=False)
            progress.advance(task)
    if failures:
        raise typer.Exit(1)


@works_app.command("add")
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


@works_app.command("held")
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


@works_app.command("territories")
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
    found = _guard(lambda: territory_mod.codes(codes or []))
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


@works_app.command("approve")
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


@works_app.command("reject")
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


@works_app.command("list")
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


@works_app.command("remove")
def works_remove(work_id: str, data_dir: DataDir = None) -> None:
    """Remove a work and all its references."""
    with _open(data_dir) as screener:
        removed = _guard(
            lambda: screener.registry.remove(
                work_id, _audit(screener).hook(CLI_ACTOR, "work.delete", work_id, {})
            )
        )
    out.print(f"removed {work_id} ({removed} fingerprints)", highlight=False)


# prompt -----------------------------------------------------------------------------------------


@app.command("prompt")
def prompt_check(
    prompts: Annotated[
        list[str] | None,
        typer.Argument(help="prompts to screen (default: one per line on standard input)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    data_dir: DataDir = None,
) -> None:
    """Screen prompts before generation: the works each names and allow, warn or refuse."""
    from screener.store.prompt_terms import PromptScreen

    given = prompts if prompts else [line.rstrip("\r\n") for line in sys.stdin]
    given = [p for p in given if p.strip()]
    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    policy = _guard(lambda: policy_mod.load(settings.policy_path)).prompt
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(settings.resolved_database_url)  # no models or indexes needed
    screen = PromptScreen(catalog)
    table = Table("decision", "score", "works", "terms", "prompt")
    failures = 0
    try:
        for text in given:
            try:
                result = screen.check(_prompt_text(text), policy)
            except InputError as exc:
                failures += 1
                if as_json:
                    print(json.dumps({"prompt": text, "error": str(exc)}, ensure_ascii=False))
                else:
                    table.add_row("[red]error[/]", "", "", str(exc), escape(text[:80]))
                continue
            if as_json:
                print(json.dumps(result.to_dict(), ensure_ascii=False), flush=True)
                continue
            table.add_row(
                result.decision.value,
                f"{result.score:.2f}",
                ", ".join(m.work_id for m in result.matches) or "-",
                "; ".join(
                    f"{t.term} ({t.how}: {t.matched_as})" for m in result.matches for t in m.terms
                )
                or "-",
                escape(text),
            )
    finally:
        catalog.close()
    if not as_json:
        out.print(table)
    if failures:
        raise typer.Exit(1)


def _prompt_text(text: str) -> str:
    if len(text) > MAX_PROMPT:
        raise InputError(f"the prompt is longer than {MAX_PROMPT} characters")
    return text


# check ------------------------------------------------------------------------------------------


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
        "verdict": verdict.to_dict(),
    }


@app.command()
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
    where = _guard(lambda: territory_mod.code(territory)) if territory is not None else None
    pictures = _picture_paths(files, explain) if explain is not None else {}
    failures = 0
    table = Table("decision", "score", "work", "pdq", "phash", "sscd", "local", "path")
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
                    table.add_row("[red]error[/]", "", "", "", "", "", "", f"{path}: {exc}")
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
                    _fmt(s.get("pdq_hamming")),
                    _fmt(s.get("phash_hamming")),
                    _fmt(s.get("sscd_cosine")),
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
        _atomic_write(out_path, picture.png)
    except ScreenerError as exc:
        err.print(f"{path}: no evidence picture: {exc}")
        return None
    except OSError as exc:
        _fail(InputError(f"cannot write {out_path}: {exc.strerror or exc}"))
    return str(out_path)


def _atomic_write(path: Path, data: bytes) -> None:
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_bytes(data)
    os.replace(scratch, path)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3f}"


# background -------------------------------------------------------------------------------------


@background_app.command("build")
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


@background_app.command("show")
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


# index ------------------------------------------------------------------------------------------


@index_app.command("rebuild")
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


@index_app.command("verify")
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


@index_app.command("export")
def index_export(
    file: Annotated[Path, typer.Argument(help="the file to write, e.g. indexes.zip")],
    data_dir: DataDir = None,
) -> None:
    """Write every fingerprint of the indexes (ids, vectors, spec, log position) to FILE."""
    with _open(data_dir) as screener, progress_bar() as progress:
        summary = _guard(
            lambda: transfer.export_indexes(screener.indexes, file, _transfer_progress(progress))
        )
    for signal, (count, mark) in summary.signals.items():
        out.print(f"{signal}: {count} fingerprints at log position {mark}", highlight=False)
    out.print(f"wrote {summary.path}", highlight=False)


@index_app.command("import")
def index_import(
    file: Annotated[Path, typer.Argument(help="a file written by `screener index export`")],
    data_dir: DataDir = None,
) -> None:
    """Load FILE into the configured index backend (e.g. FAISS files into Milvus).

    The whole file is checked first (digests, specs, agreement with the catalog); a file
    that fails is refused and nothing is written."""
    settings = Settings() if data_dir is None else Settings(data_dir=data_dir)
    try:  # the indexes are not opened: the file replaces them
        with transfer.indexes_to_import(settings) as (indexes, missing):
            for name, reason in missing.items():
                err.print(
                    f"[bold yellow]warning:[/] signal [bold]{name}[/] is not in use: "
                    f"{escape(reason)}",
                    highlight=False,
                )
            with progress_bar() as progress:
                summary = transfer.import_indexes(indexes, file, _transfer_progress(progress))
    except ScreenerError as exc:
        _fail(exc)
    for signal, (count, mark) in summary.signals.items():
        out.print(f"{signal}: {count} fingerprints, log position {mark}", highlight=False)
    for signal in summary.skipped:
        out.print(f"{signal}: not configured here, skipped", highlight=False)
    out.print(f"imported {summary.path}; check with `screener index verify`", highlight=False)


# policy -----------------------------------------------------------------------------------------


@policy_app.command("show")
def policy_show(path: Annotated[Path | None, typer.Argument()] = None) -> None:
    """Print a policy file (default: the policy in force)."""
    settings = Settings()
    policy = _guard(lambda: policy_mod.load(path or settings.policy_path))
    print(policy_mod.dumps(policy), end="")


@policy_app.command("validate")
def policy_validate(path: Path) -> None:
    """Validate a policy file."""
    policy = _guard(lambda: policy_mod.load(path))
    out.print(f"{path}: valid policy, version {policy.version}", highlight=False)


# keys and audit --------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="what the key may do")],
    owner: Annotated[str, typer.Option(help="the platform or rights holder it acts for")],
    description: Annotated[str, typer.Option(help="a note for yourself")] = "",
    data_dir: DataDir = None,
) -> None:
    """Create a key and print it once: only a hash of it is stored."""
    with _engine(data_dir) as engine:
        store = KeyStore(engine, AuditLog(engine))
        key, secret = _guard(lambda: store.create(role, owner, description, actor=CLI_ACTOR))
    err.print(
        f"key {key.id} ({key.role.value} for {key.owner!r}); store it now, it is not shown again:",
        highlight=False,
    )
    print(secret)


@keys_app.command("list")
def keys_list(
    owner: Annotated[str | None, typer.Option(help="only this owner's keys")] = None,
    data_dir: DataDir = None,
) -> None:
    """List keys (never their secrets)."""
    with _engine(data_dir) as engine:
        keys = KeyStore(engine).list(owner)
    table = Table("id", "role", "owner", "created", "revoked", "description")
    for k in keys:
        table.add_row(
            k.id,
            k.role.value,
            k.owner,
            k.created_at.isoformat(timespec="seconds"),
            k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-",
            k.description,
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: DataDir = None) -> None:
    """Revoke a key at once."""
    with _engine(data_dir) as engine:
        store = KeyStore(engine, AuditLog(engine))
        key = _guard(lambda: store.revoke(key_id, actor=CLI_ACTOR))
    out.print(f"revoked {key.id} ({key.role.value} for {key.owner!r})", highlight=False)


@keys_app.command("display-name")
def keys_display_name(
    owner: str,
    name: Annotated[str, typer.Argument(help="the name end users see; '' for none")],
    data_dir: DataDir = None,
) -> None:
    """Set what risk prompts call an owner (instead of its account name)."""
    with _engine(data_dir) as engine:
        store = KeyStore(engine, AuditLog(engine))
        shown = _guard(lambda: store.set_display_name(owner, name, actor=CLI_ACTOR))
    out.print(f"{owner!r} is shown as {shown!r}", highlight=False)


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        str | None,
        typer.Option(
            help="SEQ:HASH noted earlier (e.g. from `audit head`): also detects a "
            "log rewritten consistently since"
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Walk the hash chain; exit 1 and name the first bad record if any was edited,
    deleted, inserted or reordered."""
    parsed: Anchor | None = None
    if anchor is not None:
        seq, _, digest = anchor.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            _fail(InputError("--anchor must be SEQ:HASH (the hash is 64 hex characters)"))
        parsed = Anchor(int(seq), digest)
    with _engine(data_dir) as engine:
        report = _guard(lambda: AuditLog(engine).verify(parsed))
    if not report.ok:
        err.print(
            f"[bold red]audit log broken[/] at record {report.broken_at}: {report.reason} "
            f"({report.count} records verified before it)",
            highlight=False,
        )
        raise typer.Exit(1)
    out.print(
        f"audit log intact: {report.count} records, head {report.head_seq}:{report.head_hash}",
        highlight=False,
    )


@audit_app.command("head")
def audit_head(data_dir: DataDir = None) -> None:
    """Print SEQ:HASH of the newest record: keep it elsewhere to anchor later verifies."""
    with _engine(data_dir) as engine:
        head = AuditLog(engine).head()
    print(f"{head.seq}:{head.hash}")


@audit_app.command("tail")
def audit_tail(
    count: Annotated[int, typer.Option(min=1, max=1000)] = 20, data_dir: DataDir = None
) -> None:
    """The newest records, one JSON object per line."""
    with _engine(data_dir) as engine:
        log = AuditLog(engine)
        after = max(0, log.head().seq - count)
        records = log.records(after, count)
    for r in records:
        print(
            json.dumps(
                {
                    "seq": r.seq,
                    "at": r.at.isoformat(),
                    "actor": r.actor,
                    "action": r.action,
                    "subject": r.subject,
                    "payload": r.payload,
                    "hash": r.hash,
                },
                ensure_ascii=False,
            )
        )


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
    from screener.cli import demo_suite

    table = Table("query", "expected", "decision", "score", "top work", "ok")
    with _open(data_dir) as screener, progress_bar() as progress:
        task = progress.add_task("screening", total=None)
        rows = demo_suite.run(screener, seed=seed, on_row=lambda _r: progress.advance(task))
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
