"""`screener audit`: read and verify the audit log."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from screener.cli.common import DataDir, _engine, _fail, _guard, err, out
from screener.core.errors import InputError
from screener.store.audit import Anchor, AuditLog

app = typer.Typer(help="Read and verify the audit log.", no_args_is_help=True)


@app.command("verify")
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


@app.command("head")
def audit_head(data_dir: DataDir = None) -> None:
    """Print SEQ:HASH of the newest record: keep it elsewhere to anchor later verifies."""
    with _engine(data_dir) as engine:
        head = AuditLog(engine).head()
    print(f"{head.seq}:{head.hash}")


@app.command("tail")
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
