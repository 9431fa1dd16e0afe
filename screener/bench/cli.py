"""``screener bench ...``: the benchmarks as commands.

The screener's CLI finds this app through the ``screener.commands`` entry point group, so
the screener package never imports the benchmarks (they sit above it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    help="Operator benchmarks: accuracy, lookup speed, throughput.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)


@app.command()
def accuracy(
    images: Annotated[
        Path | None, typer.Option(help="any image folder: build a seeded suite from it")
    ] = None,
    works_dir: Annotated[
        Path | None,
        typer.Option("--works-dir", help="one subfolder per work (with --queries, --truth)"),
    ] = None,
    queries_dir: Annotated[
        Path | None, typer.Option("--queries", help="query images named by id")
    ] = None,
    truth: Annotated[Path | None, typer.Option(help="CSV: query_id,work_id[,category]")] = None,
    works: Annotated[int, typer.Option(help="works drawn from --images")] = 60,
    distractors: Annotated[
        int,
        typer.Option(help="never-registered images drawn from --images (or --distractor-images)"),
    ] = 120,
    distractor_images: Annotated[
        list[Path] | None,
        typer.Option(
            help="image file or folder (repeatable): draw the distractors from these instead "
            "of from --images (the works still come from --images); any that copies a work "
            "or another distractor is skipped"
        ),
    ] = None,
    distractor_edits: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="how many edits each distractor gets besides its untouched form, a seeded "
            "draw per distractor (default: all; fewer fits more distractors in the time)",
        ),
    ] = None,
    categories: Annotated[
        str | None, typer.Option(help="comma-separated transforms (default: all)")
    ] = None,
    seed: Annotated[int, typer.Option(help="draws the suite and the fit/hold-out split")] = 0,
    target_fpr: Annotated[
        float, typer.Option(help="false-positive rate of the block band")
    ] = 0.001,
    review_fpr: Annotated[
        float, typer.Option(help="false-positive rate of the review band")
    ] = 0.01,
    out_dir: Annotated[
        Path, typer.Option("--out", help="where JSON, plots and the policy go")
    ] = Path("benchmarks/results/accuracy"),
    write_policy: Annotated[
        Path | None, typer.Option(help="also write the fitted policy here")
    ] = None,
    regions: Annotated[
        bool, typer.Option(help="fingerprint regions (multi-region matching)")
    ] = True,
    records: Annotated[
        Path | None, typer.Option(help="refit and report from a saved records.json.gz")
    ] = None,
    background: Annotated[
        list[Path] | None,
        typer.Option(
            help="folder of generic images (repeatable, none from --images): build a "
            "background bank first, so that sscd_norm_cosine is measured and fitted"
        ),
    ] = None,
    domain: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=FOLDER[,FOLDER...] or NAME=fonts:FOLDER[,...] (repeatable, two or more): "
            "build the multi-domain suite and report leave-one-domain-out (--works and "
            "--distractors per domain; see benchmarks/README.md)"
        ),
    ] = None,
    lodo_records: Annotated[
        Path | None,
        typer.Option(help="redo the leave-one-domain-out report from a run's saved records"),
    ] = None,
) -> None:
    """Accuracy of every signal and of the fused score; fits and writes a policy."""
    from screener.bench import accuracy_run

    if (domain or lodo_records) and (images or works_dir or records or distractor_images):
        err.print(
            "[red]error:[/] --domain and --lodo-records build or read their own suites: "
            "leave out --images, --works-dir, --records and --distractor-images"
        )
        raise typer.Exit(2)
    if domain or lodo_records:
        _lodo(domain or [], lodo_records, works, distractors, distractor_edits, seed,
              target_fpr, review_fpr, out_dir, regions)  # fmt: skip
        return

    if records is None and (images is None) == (works_dir is None):
        err.print("[red]error:[/] give either --images DIR, or --works-dir, --queries and --truth")
        raise typer.Exit(2)
    if works_dir is not None and (queries_dir is None or truth is None):
        err.print("[red]error:[/] --works-dir needs --queries and --truth")
        raise typer.Exit(2)
    if (distractor_images or distractor_edits is not None) and (images is None or records):
        err.print("[red]error:[/] --distractor-images and --distractor-edits need --images")
        raise typer.Exit(2)
    started = time.perf_counter()
    try:
        report = accuracy_run.run(
            images=images,
            works_dir=works_dir,
            queries_dir=queries_dir,
            truth=truth,
            works=works,
            distractors=distractors,
            categories=categories.split(",") if categories else None,
            seed=seed,
            target_fpr=target_fpr,
            review_fpr=review_fpr,
            out_dir=out_dir,
            write_policy=write_policy,
            regions=regions,
            command=" ".join(sys.argv),
            records_file=records,
            background=background or (),
            distractor_images=distractor_images or (),
            distractor_edits=distractor_edits,
        )
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    accuracy_run.print_summary(report, out)
    out.print(f"wrote {out_dir} in {time.perf_counter() - started:.0f} s", highlight=False)


def _lodo(
    specs: list[str],
    records: Path | None,
    works: int,
    distractors: int,
    distractor_edits: int | None,
    seed: int,
    target_fpr: float,
    review_fpr: float,
    out_dir: Path,
    regions: bool,
) -> None:
    from screener.bench import domains, lodo, lodo_report

    started = time.perf_counter()
    try:
        if records is not None:
            command = " ".join(sys.argv)
            report = lodo.refit(records, target_fpr, review_fpr, command, out_dir=out_dir)
        else:
            report = lodo.run(
                [domains.parse(s) for s in specs],
                works=works,
                distractors=distractors,
                distractor_edits=distractor_edits,
                seed=seed,
                target_fpr=target_fpr,
                review_fpr=review_fpr,
                out_dir=out_dir,
                regions=regions,
                command=" ".join(sys.argv),
            )
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    out.print(lodo_report.markdown(report), highlight=False, soft_wrap=True)
    out.print(f"wrote {out_dir} in {time.perf_counter() - started:.0f} s", highlight=False)


@app.command()
def characters(
    source: Annotated[
        list[str] | None,
        typer.Option(help="character source (repeatable): wesnoth, supertux, creatures"),
    ] = None,
    root: Annotated[
        list[Path] | None,
        typer.Option(
            help="folder holding usr/share/... of the game packages (repeatable; default /): "
            "where apt-get download + dpkg-deb -x put them"
        ),
    ] = None,
    photos: Annotated[
        list[Path] | None,
        typer.Option(help="folder of photographs (repeatable): backgrounds and negatives"),
    ] = None,
    seed: Annotated[int, typer.Option(help="draws the suite")] = 0,
    characters: Annotated[int, typer.Option(help="registered characters per source")] = 8,
    new_poses: Annotated[int, typer.Option(help="new-pose queries per character")] = 4,
    lookalikes: Annotated[int, typer.Option(help="look-alikes per registered character")] = 3,
    others: Annotated[int, typer.Option(help="other characters per source")] = 6,
    photo_count: Annotated[int, typer.Option("--photo-count", help="photos per source")] = 8,
    out_dir: Annotated[Path, typer.Option("--out", help="where JSON and markdown go")] = Path(
        "benchmarks/results/characters"
    ),
    keep_suite: Annotated[
        Path | None, typer.Option(help="write the suite here (works/, queries/, truth.csv)")
    ] = None,
    records: Annotated[
        Path | None, typer.Option(help="report again from a saved records.json.gz")
    ] = None,
) -> None:
    """Character likeness: new poses, other styles and look-alikes, leave one source out."""
    from screener.bench import characters as characters_mod
    from screener.bench.characters_suite import Plan

    started = time.perf_counter()
    plan = Plan(
        characters=characters,
        new_poses=new_poses,
        lookalikes=lookalikes,
        others=others,
        photos=photo_count,
    )
    try:
        report = characters_mod.run(
            catalogue={}
            if records
            else characters_mod.load_sources(
                source or ["wesnoth", "supertux", "creatures"], root or [Path("/")]
            ),
            roots=root or [Path("/")],
            photos=photos or [],
            seed=seed,
            plan=plan,
            out_dir=out_dir,
            command=" ".join(sys.argv),
            keep_suite=keep_suite,
            records_file=records,
        )
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    out.print(characters_mod.markdown(report), highlight=False)
    out.print(f"wrote {out_dir} in {time.perf_counter() - started:.0f} s", highlight=False)


@app.command()
def prompts(
    seed: Annotated[
        int, typer.Option(help="odd: the tuning works; even: the held-out works (report these)")
    ] = 2,
    works: Annotated[
        int, typer.Option(help="synthetic works for the latency part (0: skip it)")
    ] = 10_000,
    terms: Annotated[int, typer.Option(help="terms per synthetic work")] = 20,
    checks: Annotated[int, typer.Option(help="timed prompt checks")] = 2000,
    old_checks: Annotated[
        int, typer.Option(help="timed checks of the old per-check path (seconds each)")
    ] = 5,
    policy: Annotated[Path | None, typer.Option(help="policy file (default: shipped)")] = None,
    out_dir: Annotated[Path, typer.Option("--out")] = Path("benchmarks/results/prompts"),
) -> None:
    """Prompt screening: recall per evasion category, benign matches, check latency."""
    from screener.bench import prompts as prompts_mod

    report = prompts_mod.run(
        seed,
        out_dir,
        works=works,
        terms=terms,
        checks=checks,
        old_checks=old_checks,
        policy_path=policy,
    )
    out.print(prompts_mod.markdown(report), highlight=False)
    for miss in report["recall"]["misses"]:
        err.print(f"miss: {miss}", highlight=False)


def _register_optional() -> None:
    try:
        from screener.bench import lookup
    except ImportError:  # pragma: no cover - the module is part of the package
        return
    app.command("lookup")(lookup.command)
    from screener.bench import throughput

    app.command("throughput")(throughput.command)
    from screener.bench import scale

    app.command("scale")(scale.command)
    from screener.bench import peers

    app.command("peers")(peers.command)
    from screener.bench import http_load

    app.command("http")(http_load.command)
    from screener.bench import notices

    app.command("notices")(notices.command)


_register_optional()
