"""`screener prompt`: screen prompts before generation, as the service does."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from screener.cli.common import DataDir, _guard, out
from screener.core.errors import InputError
from screener.core.policy import load
from screener.core.settings import Settings
from screener.store.catalog import Catalog

MAX_PROMPT = 2000  # as the service takes


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
    policy = _guard(lambda: load(settings.policy_path)).prompt
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
