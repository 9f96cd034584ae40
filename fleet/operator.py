"""The operators' write side: change a price, push a planogram, send any command.

Each operation checks what the fleet knows (the machine exists and has a key, the
selection exists, the price is a whole number of minor units of the machine's currency),
then builds, signs and stores the command through :mod:`fleet.commands` in the caller's
transaction. Sending is separate (:func:`deliver`): publish now from this process, or
leave the row for a running ``vend fleet serve``, whose sweeper publishes every
unexpired command nobody published.

A planogram file is the ``[[selection]]`` part of a machine's ``machine.toml`` (other
tables are ignored, so the machine's whole file works). The controller's own parser is
in ``controller/`` which the fleet may not import; the rules are repeated here, and the
planogram model would better live in ``protocols/`` for both sides.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import socket
import tomllib
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Connection, Engine, select

from fleet.commands import (
    DEFAULT_TTL,
    CommandError,
    OutgoingCommand,
    issue_command,
    mark_published,
    register_machine,
)
from fleet.mqtt import BrokerAddress, Protocol, publish_once
from fleet.queries import NotFoundError, require_machine
from fleet.store.models import machines, sales, stock_levels
from protocols.money import CURRENCIES
from protocols.telemetry import (
    CommandName,
    Effective,
    PlanogramChangeArgs,
    PlanogramEntry,
    PriceChangeArgs,
    TelemetryError,
    command_topic,
    validate_machine_id,
)
from protocols.telemetry.codec import describe
from protocols.telemetry.commands import COMMANDS

MIN_KEY_BYTES = 16
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})+$")
M = TypeVar("M", bound=BaseModel)
_PRICE = re.compile(r"^(?P<whole>\d+)(?:\.(?P<frac>\d+))?$")


class OperatorError(Exception):
    """An operator's request that cannot be carried out; the message says why."""


class InvalidInputError(OperatorError):
    """A bad price, planogram file, key or command argument."""


class UnknownSelectionError(NotFoundError):
    """The machine has no such selection (as far as its stock reports tell)."""


class CannotSignError(OperatorError):
    """The machine has no registered key, or the command does not validate."""


# --- prices --------------------------------------------------------------------------


def parse_price(text: str, currency: str) -> int:
    """A price as people write it, in major units (``12000`` VND, ``1.50`` EUR), to
    minor units; a trailing currency code must be the machine's. Never rounds."""
    raw = text.strip()
    match = re.fullmatch(r"(.*?)\s*([A-Za-z]{3})", raw)
    if match is not None:
        raw, code = match.group(1), match.group(2).upper()
        if code != currency:
            raise InvalidInputError(
                f"price {text!r} is in {code}, but the machine sells in {currency}"
            )
    if "," in raw:
        raise InvalidInputError(
            f"price {text!r}: write it without thousands separators, with '.' for decimals"
        )
    found = _PRICE.fullmatch(raw.replace("_", ""))
    if found is None:
        raise InvalidInputError(f"price {text!r} is not a number")
    digits = CURRENCIES[currency].minor_digits if currency in CURRENCIES else 0
    frac = (found.group("frac") or "").rstrip("0")
    if len(frac) > digits:
        raise InvalidInputError(
            f"price {text!r} is finer than {currency} allows ({digits} decimal places)"
        )
    scale: int = 10**digits
    minor = int(found.group("whole")) * scale + int(frac.ljust(digits, "0") or "0")
    if minor <= 0:
        raise InvalidInputError(f"price {text!r} must be above zero")
    return minor


def machine_currency(conn: Connection, machine_id: str) -> str | None:
    """The currency the machine's stock reports (or, failing that, its sales) use."""
    for table in (stock_levels, sales):
        row = conn.execute(
            select(table.c.currency).where(table.c.machine_id == machine_id).limit(1)
        ).first()
        if row is not None:
            return str(row.currency)
    return None


def _currency(conn: Connection, machine_id: str, given: str | None) -> str:
    known = machine_currency(conn, machine_id)
    if given is not None:
        given = given.upper()
        if given not in CURRENCIES:
            raise InvalidInputError(f"unknown currency {given!r}")
        if known is not None and given != known:
            raise InvalidInputError(f"{machine_id} sells in {known}, not {given}")
        return given
    if known is None:
        raise InvalidInputError(
            f"the currency of {machine_id} is not known yet (no stock or sales reported): "
            "pass --currency"
        )
    return known


def _selections(conn: Connection, machine_id: str) -> list[str]:
    rows = conn.execute(
        select(stock_levels.c.selection)
        .where(stock_levels.c.machine_id == machine_id)
        .order_by(stock_levels.c.selection)
    )
    return [row.selection for row in rows]


def set_price(
    conn: Connection,
    machine_id: str,
    selection: str,
    price: str,
    *,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
    currency: str | None = None,
    force: bool = False,
) -> OutgoingCommand:
    """Issue a signed ``price_change``. ``force`` skips the selection check (for a
    selection the machine has not reported yet)."""
    require_machine(conn, machine_id)
    code = _currency(conn, machine_id, currency)
    minor = parse_price(price, code)
    if not force:
        known = _selections(conn, machine_id)
        if not known:
            raise UnknownSelectionError(
                f"{machine_id} has reported no stock yet, so selection {selection!r} cannot "
                "be checked: pass --force to send anyway"
            )
        if selection not in known:
            raise UnknownSelectionError(
                f"{machine_id} has no selection {selection!r} (it has {', '.join(known)})"
            )
    args = _validated(PriceChangeArgs, {"selection": selection, "price": minor, "currency": code})
    return _issue(conn, machine_id, CommandName.PRICE_CHANGE, args, now=now, ttl=ttl)


# --- planograms ------------------------------------------------------------------------


class _PlanogramRow(BaseModel):
    """One ``[[selection]]`` table, with the limits machine.toml enforces."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    code: str = Field(min_length=1, max_length=8)
    product: str = Field(min_length=1)
    price: int = Field(gt=0)
    capacity: int = Field(ge=1, le=1000)
    par: int = Field(ge=0)
    motor: int = Field(ge=0, le=255)
    item_number: int | None = Field(default=None, ge=0, le=0xFFFE)

    @model_validator(mode="after")
    def _par_fits(self) -> _PlanogramRow:
        if self.par > self.capacity:
            raise ValueError(f"par {self.par} is above capacity {self.capacity}")
        return self


@dataclass(frozen=True, slots=True)
class Planogram:
    entries: tuple[PlanogramEntry, ...]
    currency: str | None  # from [machine] currency, if the file says
    config_version: str | None


def load_planogram(path: Path) -> Planogram:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: not UTF-8 text") from None
    return parse_planogram(text, str(path))


def parse_planogram(text: str, source: str = "planogram") -> Planogram:
    """The ``[[selection]]`` tables of a TOML document, checked like machine.toml checks
    them: every problem is listed by its key path (``selection[2].price: ...``)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{source}: not valid TOML: {exc}") from None
    rows = raw.get("selection")
    if not isinstance(rows, list) or not rows:
        raise InvalidInputError(f"{source}: no [[selection]] tables: nothing to push")
    problems: list[str] = []
    parsed: list[_PlanogramRow] = []
    for n, row in enumerate(rows):
        try:
            parsed.append(_PlanogramRow.model_validate(row))
        except ValidationError as exc:
            problems += [f"selection[{n}]{_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
    for label, values in (
        ("selection codes", Counter(r.code for r in parsed)),
        ("motors", Counter(str(r.motor) for r in parsed)),
    ):
        repeated = sorted(v for v, n in values.items() if n > 1)
        if repeated:
            problems.append(f"{label} repeat: {', '.join(repeated)}")
    if problems:
        raise InvalidInputError("\n".join([f"{source}: invalid planogram", *problems]))
    machine = raw.get("machine")
    currency = machine.get("currency") if isinstance(machine, dict) else None
    version = raw.get("config_version")
    return Planogram(
        entries=tuple(
            PlanogramEntry(
                code=r.code,
                product=r.product,
                price=r.price,
                capacity=r.capacity,
                par=r.par,
                motor=r.motor,
                item_number=r.item_number if r.item_number is not None else n + 1,
            )
            for n, r in enumerate(parsed)
        ),
        currency=str(currency).upper() if isinstance(currency, str) else None,
        config_version=str(version) if version is not None else None,
    )


def _path(loc: Sequence[int | str]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def push_planogram(
    conn: Connection,
    machine_id: str,
    planogram: Planogram,
    *,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
    effective: Effective = Effective.NEXT_SERVICE,
    config_version: str | None = None,
    currency: str | None = None,
) -> OutgoingCommand:
    """Issue a signed ``planogram_change``; the version defaults to the file's
    ``config_version``, else ``fleet-<UTC time>``."""
    require_machine(conn, machine_id)
    code = _currency(conn, machine_id, currency or planogram.currency)
    if planogram.currency is not None and planogram.currency != code:
        raise InvalidInputError(f"the planogram is priced in {planogram.currency}, not {code}")
    version = config_version or planogram.config_version or f"fleet-{now:%Y%m%dT%H%M%SZ}"
    args = _validated(
        PlanogramChangeArgs,
        {
            "selections": [e.model_dump() for e in planogram.entries],
            "currency": code,
            "effective": effective.value,
            "config_version": version,
        },
    )
    return _issue(conn, machine_id, CommandName.PLANOGRAM_CHANGE, args, now=now, ttl=ttl)


# --- any command -----------------------------------------------------------------------


def parse_command_args(name: str, pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` words to arguments, typed by the command's schema (``true`` for a
    boolean, digits for an integer, anything for text)."""
    command = _command_name(name)
    fields = COMMANDS[command].model_fields["args"].annotation
    assert isinstance(fields, type)
    assert issubclass(fields, BaseModel)
    properties = fields.model_json_schema().get("properties", {})
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"argument {pair!r}: expected key=value")
        if key not in properties:
            known = ", ".join(properties) or "none"
            raise InvalidInputError(
                f"{command.value} takes no argument {key!r} (it takes: {known})"
            )
        args[key] = _typed(key, value, properties[key].get("type"))
    return args


def _typed(key: str, value: str, kind: object) -> Any:
    if kind == "boolean":
        if value.lower() in {"true", "yes", "1"}:
            return True
        if value.lower() in {"false", "no", "0"}:
            return False
        raise InvalidInputError(f"{key}={value!r}: expected true or false")
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", value):
            raise InvalidInputError(f"{key}={value!r}: expected a whole number")
        return int(value)
    if kind in {"array", "object"}:
        try:
            return json.loads(value)
        except ValueError:
            raise InvalidInputError(f"{key}: expected JSON, got {value!r}") from None
    return value


def _command_name(name: str) -> CommandName:
    try:
        return CommandName(name)
    except ValueError:
        known = ", ".join(c.value for c in CommandName)
        raise InvalidInputError(f"unknown command {name!r} (known: {known})") from None


def send_command(
    conn: Connection,
    machine_id: str,
    name: str,
    args: Mapping[str, Any],
    *,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
) -> OutgoingCommand:
    """Issue any command by name; price and planogram changes keep their own checks
    (:func:`set_price`, :func:`push_planogram`)."""
    command = _command_name(name)
    require_machine(conn, machine_id)
    args_type = COMMANDS[command].model_fields["args"].annotation
    assert isinstance(args_type, type)
    assert issubclass(args_type, BaseModel)
    validated = _validated(args_type, dict(args))
    return _issue(conn, machine_id, command, validated, now=now, ttl=ttl)


def _validated(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(f"bad arguments: {describe(exc)}") from None


def _issue(
    conn: Connection,
    machine_id: str,
    name: CommandName,
    args: BaseModel,
    *,
    now: datetime,
    ttl: timedelta,
) -> OutgoingCommand:
    try:
        return issue_command(conn, machine_id, name, args.model_dump(mode="json"), now=now, ttl=ttl)
    except CommandError as exc:
        raise CannotSignError(str(exc)) from None


# --- keys --------------------------------------------------------------------------------


def parse_key(text: str) -> bytes:
    """``hex:<digits>``, ``base64:<text>``, or bare (hex when it is all hex digits)."""
    kind, _, rest = text.partition(":")
    if kind not in {"hex", "base64"}:
        kind, rest = ("hex" if _HEX.fullmatch(text) else "base64"), text
    try:
        key = bytes.fromhex(rest) if kind == "hex" else base64.b64decode(rest, validate=True)
    except (ValueError, binascii.Error):
        raise InvalidInputError(f"the key is not valid {kind}") from None
    if len(key) < MIN_KEY_BYTES:
        raise InvalidInputError(f"the key must be at least {MIN_KEY_BYTES} bytes")
    return key


def register_key(conn: Connection, machine_id: str, key_text: str, *, now: datetime) -> bool:
    """Set the key a machine's commands are signed with (creating the machine if new);
    True when the machine was new."""
    key = parse_key(key_text)
    try:
        validate_machine_id(machine_id)
    except TelemetryError as exc:
        raise InvalidInputError(exc.reason) from None
    new = conn.execute(select(machines.c.id).where(machines.c.id == machine_id)).first() is None
    register_machine(conn, machine_id, key, now)
    return new


# --- sending -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    command: OutgoingCommand
    topic: str
    published: bool


def deliver(
    engine: Engine,
    outgoing: Sequence[OutgoingCommand],
    address: BrokerAddress,
    *,
    now: datetime,
    protocol: Protocol = Protocol.AUTO,
    timeout: float = 10.0,
) -> list[Delivery]:
    """Publish stored commands (QoS 1, each waits for its PUBACK) and mark them
    published; raises fleet.mqtt.BrokerError, leaving them for the service's sweeper."""
    live = [c for c in outgoing if c.expires_at > now]
    messages = [
        (
            command_topic(c.machine_id, c.name),
            c.payload,
            max(1, int((c.expires_at - now).total_seconds())),
        )
        for c in live
    ]
    client_id = f"vendfleet-cli-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    asyncio.run(
        publish_once(address, messages, client_id=client_id, protocol=protocol, timeout=timeout)
    )
    with engine.begin() as conn:
        mark_published(conn, [c.id for c in live], now)
    sent = {c.id for c in live}
    return [Delivery(c, command_topic(c.machine_id, c.name), c.id in sent) for c in outgoing]
