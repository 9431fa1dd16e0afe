"""`screener keys`: create, list and revoke API keys, and owners' display names."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from screener.cli.common import CLI_ACTOR, DataDir, _engine, _guard, err, out
from screener.store.audit import AuditLog
from screener.store.keys import KeyStore, Role

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@app.command("create")
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


@app.command("list")
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


@app.command("revoke")
def keys_revoke(key_id: str, data_dir: DataDir = None) -> None:
    """Revoke a key at once."""
    with _engine(data_dir) as engine:
        store = KeyStore(engine, AuditLog(engine))
        key = _guard(lambda: store.revoke(key_id, actor=CLI_ACTOR))
    out.print(f"revoked {key.id} ({key.role.value} for {key.owner!r})", highlight=False)


@app.command("display-name")
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
