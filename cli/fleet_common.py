"""Plumbing shared by the `vend fleet` operator commands: settings, database, errors and
their exit codes, JSON, times and money for people.

Exit codes (docs/operator.md): 0 ok, 1 error (database unusable, unexpected failure),
2 usage or configuration, 3 broker unreachable (a command is then stored, not sent),
4 not found (machine, selection), 5 refused (the command cannot be signed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from cli.config import ENV_VARS, ConfigError, FleetSettings, load_settings
from fleet import operator, queries
from fleet.mqtt import BrokerUrlError
from fleet.store.db import StoreError, make_engine
from fleet.store.schema import require_migrated
from protocols.money import Money

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BROKER_UNREACHABLE = 3
EXIT_NOT_FOUND = 4
EXIT_REFUSED = 5

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


# --- shared options and plumbing ----------------------------------------------------------


def complete_machines(ctx: typer.Context, incomplete: str) -> list[str]:
    try:
        config = ctx.params.get("config")
        settings = load_settings(
            {"db": ctx.params.get("db")}, config=Path(config) if config else None
        )
        engine = make_engine(settings.db)
        try:
            with engine.connect() as conn:
                ids = [m.id for m in queries.list_machines(conn)]
        finally:
            engine.dispose()
    except Exception:  # noqa: BLE001  (completion must never print a traceback)
        return []
    return [i for i in ids if i.startswith(incomplete)]


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Settings file (default ~/.config/vendfleet/config.toml).",
        envvar="VEND_CONFIG",
        show_default=False,
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option("--db", help=f"Database URL (env {ENV_VARS['db']}).", show_default=False),
]
BrokerOpt = Annotated[
    str | None,
    typer.Option(
        "--broker",
        help=f"mqtt://user:password@host:port (env {ENV_VARS['broker']}).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
MachineArg = Annotated[
    str, typer.Argument(help="Machine id.", autocompletion=complete_machines, show_default=False)
]
TtlOpt = Annotated[
    int | None,
    typer.Option(
        "--ttl",
        min=1,
        help=f"Seconds the command stays valid (env {ENV_VARS['command_ttl']}, default 600).",
        show_default=False,
    ),
]
NoPublishOpt = Annotated[
    bool,
    typer.Option(
        "--no-publish",
        help="Only store the command; a running `vend fleet serve` sends it within seconds.",
    ),
]


def fail(message: str, code: int) -> typer.Exit:
    err.print(f"vend fleet: {message}", markup=False)
    return typer.Exit(code=code)


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """Our error types to a message on stderr and a documented exit code."""
    try:
        yield
    except (ConfigError, operator.InvalidInputError, BrokerUrlError) as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    except queries.NotFoundError as exc:
        raise fail(str(exc.args[0]), EXIT_NOT_FOUND) from None
    except operator.CannotSignError as exc:
        raise fail(str(exc), EXIT_REFUSED) from None
    except StoreError as exc:
        raise fail(str(exc), EXIT_ERROR) from None
    except OperationalError as exc:
        raise fail(f"database error: {exc.orig}", EXIT_ERROR) from None


def settings_from(config: Path | None, **overrides: str | int | None) -> FleetSettings:
    with errors():
        return load_settings(overrides, config=config)


@contextlib.contextmanager
def open_engine(settings: FleetSettings) -> Iterator[Engine]:
    """A migrated database; a SQLite file that does not exist is an error, not created."""
    with errors():
        try:
            url = make_url(settings.db)
        except ArgumentError:
            url = None  # make_engine names the problem
        except ValueError as exc:  # a non-numeric port, which make_engine lets through
            raise StoreError(f"bad database URL {settings.db!r}: {exc}") from None
        if url is not None and url.get_backend_name() == "sqlite":
            path = url.database
            if path and path != ":memory:" and not Path(path).exists():
                raise StoreError(
                    f"no fleet database at {path}: check --db / VEND_DB, or create it with "
                    "`vend fleet migrate`"
                )
        engine = make_engine(settings.db)
        try:
            require_migrated(engine)
            yield engine
        finally:
            engine.dispose()


@contextlib.contextmanager
def reading(settings: FleetSettings) -> Iterator[Connection]:
    with open_engine(settings) as engine, errors(), engine.connect() as conn:
        yield conn


@contextlib.contextmanager
def progress(message: str) -> Iterator[None]:
    """A spinner on a terminal; nothing when stderr is a file or a pipe."""
    if err.is_terminal:
        with err.status(message):
            yield
    else:
        yield


def jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def print_json(value: Any) -> None:
    typer.echo(json.dumps(jsonable(value), ensure_ascii=False, indent=2))


def local(value: datetime | None, zone: ZoneInfo) -> str:
    return "-" if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def money(minor: int | None, currency: str | None) -> str:
    if minor is None or currency is None:
        return "-"
    return Money(minor, currency).format()


def when(text: str, zone: ZoneInfo, what: str) -> datetime:
    """``now``, ``today``, ``yesterday``, an ISO date or date-time (local unless it says)."""
    today = datetime.combine(datetime.now(zone).date(), clock_time(), zone)
    named = {"now": datetime.now(zone), "today": today, "yesterday": today - timedelta(days=1)}
    if text in named:
        return named[text]
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise fail(
            f"{what} {text!r}: expected now, today, yesterday, YYYY-MM-DD or YYYY-MM-DDTHH:MM",
            EXIT_USAGE,
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def command_ttl(settings: FleetSettings) -> timedelta:
    return timedelta(seconds=settings.command_ttl)
