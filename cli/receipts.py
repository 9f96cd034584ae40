"""`vend audit receipts`: the e-receipt transmission queue for auditors and operators.

    vend audit receipts [--db URL] [--state S] [--machine M] [--limit N] [--json]
    vend audit receipts retry KEY [--kind K] [--db URL]

KEY is ``machine/series/number`` or the idempotency key (``rcpt-...``). Exit codes: 0 ok,
1 error (database unusable, unknown receipt, receipt not retryable), 2 usage.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, Engine, select

from fleet.einvoice import (
    QueuedReceipt,
    QueueState,
    ReceiptError,
    ReceiptKey,
    ReceiptKind,
    counts,
    find_id,
    list_receipts,
    retry,
)
from fleet.store.db import DEFAULT_DB_URL, StoreError, make_engine
from fleet.store.einvoice_models import receipt_queue
from fleet.store.schema import require_migrated

EXIT_ERROR = 1

app = typer.Typer(
    help="E-receipt transmission queue: what was sent, what is pending, what failed.",
    invoke_without_command=True,
)

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="VEND_DB",
        help="Database URL: sqlite:///path (default ./fleet.sqlite) or postgresql+psycopg://...",
    ),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"vend audit receipts: {message}", err=True)
    return typer.Exit(code=EXIT_ERROR)


def _engine(db: str) -> Engine:
    try:
        engine = make_engine(db)
        require_migrated(engine)
    except StoreError as exc:
        raise _fail(str(exc)) from None
    return engine


@app.callback()
def show(
    ctx: typer.Context,
    *,
    db: DbOption = DEFAULT_DB_URL,
    state: Annotated[
        QueueState | None, typer.Option("--state", help="Only receipts in this state.")
    ] = None,
    machine: Annotated[str | None, typer.Option("--machine", help="Only this machine.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """List the queue (the default when no subcommand is given)."""
    if ctx.invoked_subcommand is not None:
        return
    engine = _engine(db)
    try:
        with engine.connect() as conn:
            rows = list_receipts(conn, state=state, machine_id=machine, limit=limit)
            totals = counts(conn)
    finally:
        engine.dispose()
    if as_json:
        for row in rows:
            typer.echo(json.dumps(_as_dict(row), ensure_ascii=False))
        return
    _table(rows, totals)


@app.command("retry")
def retry_command(
    key: Annotated[str, typer.Argument(help="machine/series/number, or the rcpt-... key.")],
    *,
    kind: Annotated[
        ReceiptKind | None, typer.Option("--kind", help="Which document, if several share KEY.")
    ] = None,
    db: DbOption = DEFAULT_DB_URL,
) -> None:
    """Send a rejected or failed receipt again, from a fresh count of attempts."""
    engine = _engine(db)
    try:
        with engine.begin() as conn:
            row_id = _find(conn, key, kind)
            row = retry(conn, row_id, datetime.now(UTC))
    except ReceiptError as exc:
        raise _fail(str(exc)) from None
    finally:
        engine.dispose()
    typer.echo(f"{row.key} ({row.kind.value}) queued again: {row.state.value}")


def _find(conn: Connection, text: str, kind: ReceiptKind | None) -> int:
    if text.startswith("rcpt-"):
        found = conn.execute(
            select(receipt_queue.c.id).where(receipt_queue.c.idempotency_key == text)
        ).scalar_one_or_none()
    else:
        found = find_id(conn, ReceiptKey.parse(text), kind)
    if found is None:
        raise ReceiptError(f"no receipt {text} in the queue")
    return int(found)


def _as_dict(row: QueuedReceipt) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "key": str(row.key),
        "kind": row.kind.value,
        "state": row.state.value,
        "attempts": row.attempts,
        "next_attempt_at": when(row.next_attempt_at),
        "last_error": row.last_error,
        "provider": row.provider,
        "provider_ref": row.provider_ref,
        "total": row.total,
        "currency": row.currency,
        "issued_at": when(row.issued_at),
        "sale_seq": row.sale_seq,
        "accepted_at": when(row.accepted_at),
        "original": str(row.original) if row.original else None,
        "replaced_by": str(row.replaced_by) if row.replaced_by else None,
        "idempotency_key": row.idempotency_key,
    }


def _table(rows: list[QueuedReceipt], totals: dict[QueueState, int]) -> None:
    table = Table(title="E-receipt queue")
    table.add_column("receipt", no_wrap=True)
    for name in ("kind", "state", "tries", "next / accepted", "reference", "link"):
        table.add_column(name)
    for row in rows:
        when = row.accepted_at if row.state is QueueState.ACCEPTED else row.next_attempt_at
        link = ""
        if row.original:
            link = f"corrects {row.original}"
        if row.replaced_by:
            link = f"replaced by {row.replaced_by}"
        reference = row.provider_ref or (row.last_error or "")[:60]
        table.add_row(
            str(row.key),
            row.kind.value,
            row.state.value,
            str(row.attempts),
            when.strftime("%Y-%m-%d %H:%M:%SZ") if when else "",
            reference,
            link,
        )
    console = Console()
    console.print(table)
    console.print(", ".join(f"{state.value} {count}" for state, count in totals.items()))
