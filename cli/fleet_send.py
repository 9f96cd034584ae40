"""`vend fleet price set | planogram push | command`: signed commands to one machine,
stored, then published (or left for `vend fleet serve` with --no-publish)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Connection

from cli.config import FleetSettings
from cli.fleet_common import (
    EXIT_BROKER_UNREACHABLE,
    BrokerOpt,
    ConfigOpt,
    DbOpt,
    JsonOpt,
    MachineArg,
    NoPublishOpt,
    TtlOpt,
    command_ttl,
    errors,
    fail,
    local,
    open_engine,
    print_json,
    progress,
    settings_from,
)
from fleet import operator
from fleet.commands import OutgoingCommand
from fleet.mqtt import BrokerAddress, BrokerError
from protocols.telemetry import CommandName, Effective

app = typer.Typer()  # nameless: joins `vend fleet` through cli.fleet_ops
price_app = typer.Typer(no_args_is_help=True, help="Change prices remotely.")
planogram_app = typer.Typer(no_args_is_help=True, help="Replace a machine's planogram.")
app.add_typer(price_app, name="price")
app.add_typer(planogram_app, name="planogram")

# --- write commands -----------------------------------------------------------------------


def _send(
    settings: FleetSettings,
    build: Callable[[Connection, datetime], OutgoingCommand],
    *,
    publish: bool,
    as_json: bool,
) -> None:
    """Store the command in one transaction, then publish it (unless --no-publish)."""
    now = datetime.now(UTC)
    with open_engine(settings) as engine:
        with errors(), engine.begin() as conn:
            command = build(conn, now)
        published = False
        problem = None
        if publish:
            with errors():
                address = BrokerAddress.from_url(settings.broker_url)
            try:
                with progress(f"publishing to {address}"):
                    operator.deliver(engine, [command], address, now=now)
                published = True
            except BrokerError as exc:
                problem = str(exc)
    result = {
        "command_id": command.id,
        "machine_id": command.machine_id,
        "name": command.name,
        "issued_at": command.issued_at,
        "expires_at": command.expires_at,
        "published": published,
    }
    if as_json:
        print_json(result if problem is None else {**result, "error": problem})
    else:
        expires = local(command.expires_at, settings.zone)
        state = "sent" if published else "stored (a running `vend fleet serve` sends it)"
        what = f"{command.name} for {command.machine_id}"
        typer.echo(f"{what}: {state}; id {command.id}, valid until {expires}")
    if problem is not None:
        raise fail(
            f"{problem}; command {command.id} is stored and a running `vend fleet serve` "
            f"sends it before it expires",
            EXIT_BROKER_UNREACHABLE,
        )


@price_app.command(
    "set",
    epilog="Examples:\n\n  vend fleet price set vm-0001 A3 12000\n\n"
    "  vend fleet price set vm-eu-07 B2 1.50 --json\n\n"
    "  vend fleet price set vm-0001 C9 15000 --force --no-publish",
)
def price_set(
    machine: MachineArg,
    selection: Annotated[str, typer.Argument(help="Selection code, e.g. A3.", show_default=False)],
    price: Annotated[
        str,
        typer.Argument(
            help="New price in the machine's currency, e.g. 12000 (VND) or 1.50 (EUR).",
            show_default=False,
        ),
    ],
    *,
    config: ConfigOpt = None,
    db: DbOpt = None,
    broker: BrokerOpt = None,
    ttl: TtlOpt = None,
    currency: Annotated[
        str | None, typer.Option(help="Currency, when the fleet does not know the machine's yet.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Send even if the machine has not reported this selection."),
    ] = False,
    no_publish: NoPublishOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Change one selection's price; the machine applies it at once and acks."""
    settings = settings_from(config, db=db, broker=broker, command_ttl=ttl)
    _send(
        settings,
        lambda conn, now: operator.set_price(
            conn,
            machine,
            selection,
            price,
            now=now,
            ttl=command_ttl(settings),
            currency=currency,
            force=force,
        ),
        publish=not no_publish,
        as_json=as_json,
    )


@planogram_app.command(
    "push",
    epilog="Examples:\n\n  vend fleet planogram push vm-0001 planogram.toml\n\n"
    "  vend fleet planogram push vm-0001 machine.toml --effective now --config-version 2026-03",
)
def planogram_push(
    machine: MachineArg,
    file: Annotated[
        Path,
        typer.Argument(
            help="TOML with [[selection]] tables (machine.toml works).", show_default=False
        ),
    ],
    *,
    config: ConfigOpt = None,
    db: DbOpt = None,
    broker: BrokerOpt = None,
    ttl: TtlOpt = None,
    effective: Annotated[
        Effective,
        typer.Option(help="next_service: when a technician next opens the machine; now: at once."),
    ] = Effective.NEXT_SERVICE,
    config_version: Annotated[
        str | None,
        typer.Option(
            help="Version the machine will report (default: the file's config_version, "
            "else fleet-<time>)."
        ),
    ] = None,
    currency: Annotated[
        str | None, typer.Option(help="Currency, when neither file nor fleet knows it.")
    ] = None,
    no_publish: NoPublishOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Replace a machine's planogram (selections, products, prices, capacities, motors)."""
    settings = settings_from(config, db=db, broker=broker, command_ttl=ttl)
    with errors():
        planogram = operator.load_planogram(file)
    _send(
        settings,
        lambda conn, now: operator.push_planogram(
            conn,
            machine,
            planogram,
            now=now,
            ttl=command_ttl(settings),
            effective=effective,
            config_version=config_version,
            currency=currency,
        ),
        publish=not no_publish,
        as_json=as_json,
    )


@app.command(
    "command",
    epilog="Examples:\n\n  vend fleet command vm-0001 request_dex reset=true\n\n"
    "  vend fleet command vm-0001 selection_service selection=B1 in_service=false reason=recall\n\n"
    "  vend fleet command vm-0001 reboot --no-publish",
)
def command(
    machine: MachineArg,
    name: Annotated[CommandName, typer.Argument(help="The command.", show_default=False)],
    args: Annotated[
        list[str] | None, typer.Argument(help="Arguments as key=value.", show_default=False)
    ] = None,
    *,
    config: ConfigOpt = None,
    db: DbOpt = None,
    broker: BrokerOpt = None,
    ttl: TtlOpt = None,
    no_publish: NoPublishOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Send any signed command by name, with key=value arguments."""
    settings = settings_from(config, db=db, broker=broker, command_ttl=ttl)
    with errors():
        parsed = operator.parse_command_args(name.value, args or [])
    _send(
        settings,
        lambda conn, now: operator.send_command(
            conn, machine, name.value, parsed, now=now, ttl=command_ttl(settings)
        ),
        publish=not no_publish,
        as_json=as_json,
    )
