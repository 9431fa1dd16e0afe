"""`screener policy`: show and validate policy files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from screener.cli.common import _guard, out
from screener.core.policy import dumps, load
from screener.core.settings import Settings

app = typer.Typer(help="Show and validate policy files.", no_args_is_help=True)


@app.command("show")
def policy_show(path: Annotated[Path | None, typer.Argument()] = None) -> None:
    """Print a policy file (default: the policy in force)."""
    settings = Settings()
    policy = _guard(lambda: load(path or settings.policy_path))
    print(dumps(policy), end="")


@app.command("validate")
def policy_validate(path: Path) -> None:
    """Validate a policy file."""
    policy = _guard(lambda: load(path))
    out.print(f"{path}: valid policy, version {policy.version}", highlight=False)
