"""`vend fleet`: run the fleet service and manage its database.

Exit codes: 0 ok, 1 error (database unusable or not migrated), 2 usage, 3 broker
unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine

from cli import fleet_broker, fleet_ops, fleet_reviews, fleet_stores
from fleet.broker import EmbeddedBrokerError, embedded_broker
from fleet.einvoice import HttpProvider, LocalProvider, Sender
from fleet.mqtt import BrokerAddress, BrokerUnreachableError, BrokerUrlError, Protocol
from fleet.service import FleetService, ServiceOptions
from fleet.store.db import DEFAULT_DB_URL, StoreError, make_engine
from fleet.store.schema import require_migrated, upgrade

EXIT_ERROR = 1
EXIT_BROKER_UNREACHABLE = 3
DEFAULT_BROKER_URL = "mqtt://127.0.0.1:1883"

app = typer.Typer(
    no_args_is_help=True,
    help="The fleet service: ingest telemetry into SQLite or PostgreSQL, send commands.",
)
fleet_broker.register(app)
app.add_typer(fleet_ops.app)
app.add_typer(fleet_stores.app)
app.add_typer(fleet_reviews.app)

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="VEND_DB",
        help="Database URL: sqlite:///path (default ./fleet.sqlite) or postgresql+psycopg://...",
    ),
]


def _fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    typer.echo(f"vend fleet: {message}", err=True)
    return typer.Exit(code=code)


def _engine(db: str) -> Engine:
    try:
        return make_engine(db)
    except StoreError as exc:
        raise _fail(str(exc)) from None


@app.command()
def migrate(db: DbOption = DEFAULT_DB_URL) -> None:
    """Create or upgrade the fleet schema to the newest revision (safe to repeat)."""
    engine = _engine(db)
    try:
        before, after = upgrade(engine)
    except StoreError as exc:
        raise _fail(str(exc)) from None
    finally:
        engine.dispose()
    if before == after:
        typer.echo(f"schema already at {after}")
    else:
        typer.echo(f"schema upgraded from {before or 'empty'} to {after}")


@app.command()
def serve(
    *,
    db: DbOption = DEFAULT_DB_URL,
    broker: Annotated[
        str,
        typer.Option(
            "--broker", envvar="VEND_BROKER", help="mqtt://user:password@host:port of the broker."
        ),
    ] = DEFAULT_BROKER_URL,
    embedded: Annotated[
        bool,
        typer.Option(
            "--embedded-broker",
            help="Start an MQTT 3.1.1 broker (amqtt) in this process on the --broker address.",
        ),
    ] = False,
    migrate_first: Annotated[
        bool, typer.Option("--migrate", help="Upgrade the schema before serving.")
    ] = False,
    group: Annotated[
        str,
        typer.Option(help="Shared-subscription group: processes in one group split the load."),
    ] = "ingest",
    share: Annotated[
        bool,
        typer.Option(
            "--share/--no-share",
            help="Share event topics within --group (MQTT 5). A single process may prefer "
            "--no-share: its persistent session then queues across broker restarts too.",
        ),
    ] = True,
    client_id: Annotated[
        str | None,
        typer.Option(help="MQTT client id, unique per process (default vendfleet-GROUP-HOST)."),
    ] = None,
    protocol: Annotated[
        Protocol, typer.Option(help="MQTT version; auto tries 5 then 3.1.1.")
    ] = Protocol.AUTO,
    batch_size: Annotated[
        int, typer.Option(min=1, max=5000, help="Messages per database transaction.")
    ] = 200,
    receipts_provider: Annotated[
        str | None,
        typer.Option(
            envvar="VEND_RECEIPTS_PROVIDER",
            help="Send queued e-receipts to local:FOLDER or to an e-invoice provider's "
            "http(s)://... API. Without it they stay queued (see `vend audit receipts`).",
        ),
    ] = None,
    receipts_token: Annotated[
        str | None,
        typer.Option(
            envvar="VEND_RECEIPTS_TOKEN",
            help="Bearer token for an http(s) receipts provider.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO.")] = False,
) -> None:
    """Ingest telemetry from the broker into the database until interrupted."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        address = BrokerAddress.from_url(broker)
    except BrokerUrlError as exc:
        raise _fail(str(exc)) from None
    provider = None
    if receipts_provider is not None:
        provider = _receipts_provider(receipts_provider, receipts_token)
    engine = _engine(db)
    try:
        if migrate_first:
            upgrade(engine)
        require_migrated(engine)
        options = ServiceOptions(
            group=group,
            share=share,
            client_id=client_id,
            protocol=Protocol.V311 if embedded else protocol,
            batch_size=batch_size,
        )
        sender = None if provider is None else Sender(engine, provider)
        asyncio.run(_serve(engine, address, options, embedded=embedded, sender=sender))
    except StoreError as exc:
        raise _fail(str(exc)) from None
    except BrokerUnreachableError as exc:
        raise _fail(str(exc), EXIT_BROKER_UNREACHABLE) from None
    except EmbeddedBrokerError as exc:
        raise _fail(str(exc), EXIT_BROKER_UNREACHABLE) from None
    finally:
        engine.dispose()


def _receipts_provider(spec: str, token: str | None) -> LocalProvider | HttpProvider:
    if spec.startswith("local:") and spec.removeprefix("local:"):
        return LocalProvider(Path(spec.removeprefix("local:")).expanduser())
    try:
        return HttpProvider(spec, token=token)
    except ValueError:
        raise typer.BadParameter(
            f"{spec!r}: expected local:FOLDER or http(s)://host[:port]/path",
            param_hint="--receipts-provider",
        ) from None


def _receipts_target(sender: Sender | None) -> str:
    if sender is None:
        return "e-receipts stay queued (no --receipts-provider)"
    provider = sender.provider
    if isinstance(provider, LocalProvider):
        return f"e-receipts -> {provider.folder}"
    return f"e-receipts -> {provider.name} provider"


async def _serve(
    engine: Engine,
    address: BrokerAddress,
    options: ServiceOptions,
    *,
    embedded: bool,
    sender: Sender | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        if embedded:
            address = await stack.enter_async_context(embedded_broker(address))
        service = FleetService(engine, address, options, sender=sender)
        typer.echo(
            f"vend fleet: serving {address} -> {engine.url.render_as_string()}; "
            + _receipts_target(sender),
            err=True,
        )
        await service.run(stop, fail_fast=True)
