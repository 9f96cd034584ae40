"""Commands to machines: built, signed with the machine's HMAC key, stored, then published.

A command row is written in the caller's transaction (so a resync is recorded with the
gap that caused it) and published afterwards by the service: ``payload`` holds the exact
signed bytes, so publishing twice sends the same command and the machine's replay guard
turns the second into a no-op. The machine answers on its ``ack`` topic, which
:func:`record_ack` folds back into the row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, and_, select, update

from fleet.store.models import commands, machines
from protocols.telemetry import (
    CommandAckBody,
    CommandName,
    TelemetryError,
    encode,
    sign,
)
from protocols.telemetry.codec import describe
from protocols.telemetry.commands import COMMANDS, CommandArgs
from protocols.telemetry.signing import MAX_LIFETIME

DEFAULT_TTL = timedelta(minutes=10)


class CommandError(Exception):
    """A command cannot be issued (no key for the machine, bad arguments)."""


@dataclass(frozen=True, slots=True)
class OutgoingCommand:
    id: str
    machine_id: str
    name: str
    payload: bytes
    issued_at: datetime
    expires_at: datetime


def register_machine(conn: Connection, machine_id: str, key: bytes | None, now: datetime) -> None:
    """Create the machine (or set its key): the HMAC key its commands are signed with."""
    existing = conn.execute(select(machines.c.id).where(machines.c.id == machine_id)).first()
    if existing is None:
        conn.execute(
            machines.insert().values(
                id=machine_id, first_seen=now, last_seen=now, hmac_key=key, last_seq=0, max_seq=0
            )
        )
    else:
        conn.execute(update(machines).where(machines.c.id == machine_id).values(hmac_key=key))


def machine_key(conn: Connection, machine_id: str) -> bytes | None:
    row = conn.execute(select(machines.c.hmac_key).where(machines.c.id == machine_id)).first()
    return None if row is None else row.hmac_key


def issue_command(
    conn: Connection,
    machine_id: str,
    name: CommandName | str,
    args: CommandArgs | Mapping[str, Any],
    *,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
    key: bytes | None = None,
) -> OutgoingCommand:
    """Build, sign and store a command; raises CommandError when it cannot be signed.

    ``key`` defaults to the machine's registered key.
    """
    try:
        command_name = CommandName(name)
    except ValueError:
        raise CommandError(f"unknown command {name!r}") from None
    if not timedelta(seconds=1) <= ttl <= MAX_LIFETIME:
        raise CommandError(f"command lifetime {ttl} must be between 1 s and {MAX_LIFETIME}")
    if key is None:
        key = machine_key(conn, machine_id)
    if key is None:
        raise CommandError(f"machine {machine_id!r} has no registered key: cannot sign {name}")
    issued = now.replace(microsecond=0)
    args_data = args.model_dump(mode="json") if isinstance(args, CommandArgs) else dict(args)
    try:
        command = COMMANDS[command_name].model_validate(
            {
                "id": str(uuid.uuid4()),
                "machine_id": machine_id,
                "issued_at": issued,
                "expires_at": issued + ttl,
                "args": args_data,
            }
        )
        payload = encode(sign(command, key))
    except ValidationError as exc:
        raise CommandError(f"bad {command_name.value} command: {describe(exc)}") from None
    except TelemetryError as exc:
        raise CommandError(f"cannot sign {command_name.value} for {machine_id}: {exc}") from None
    conn.execute(
        commands.insert().values(
            id=command.id,
            machine_id=machine_id,
            name=command_name.value,
            args=json.dumps(args_data, sort_keys=True, ensure_ascii=False),
            payload=payload,
            issued_at=issued,
            expires_at=command.expires_at,
        )
    )
    return OutgoingCommand(
        command.id, machine_id, command_name.value, payload, issued, command.expires_at
    )


def unpublished(conn: Connection, now: datetime, limit: int = 100) -> list[OutgoingCommand]:
    """Unexpired commands never published (their publisher died or had no connection)."""
    rows = conn.execute(
        select(commands)
        .where(and_(commands.c.published_at.is_(None), commands.c.expires_at > now))
        .order_by(commands.c.issued_at)
        .limit(limit)
    )
    return [
        OutgoingCommand(
            row.id, row.machine_id, row.name, row.payload, row.issued_at, row.expires_at
        )
        for row in rows
    ]


def mark_published(conn: Connection, ids: Sequence[str], now: datetime) -> None:
    if ids:
        conn.execute(
            update(commands)
            .where(and_(commands.c.id.in_(ids), commands.c.published_at.is_(None)))
            .values(published_at=now)
        )


def live_resync(conn: Connection, machine_id: str, now: datetime) -> str | None:
    """The newest unexpired resync for this machine. It asks for everything after its
    ``after_seq``, so a gap found while it lives needs no second one; gaps still open
    when it expires get a new one (at most one per lifetime, whatever the acks say)."""
    row = conn.execute(
        select(commands.c.id)
        .where(
            and_(
                commands.c.machine_id == machine_id,
                commands.c.name == CommandName.RESYNC.value,
                commands.c.expires_at > now,
            )
        )
        .order_by(commands.c.issued_at.desc())
        .limit(1)
    ).first()
    return None if row is None else str(row.id)


def record_ack(conn: Connection, machine_id: str, ack: CommandAckBody, at: datetime) -> bool:
    """Fold a machine's ack into its command; False if no such command for that machine."""
    result = conn.execute(
        update(commands)
        .where(and_(commands.c.id == ack.command_id, commands.c.machine_id == machine_id))
        .values(ack_outcome=ack.outcome.value, ack_detail=ack.detail, acked_at=at)
    )
    return bool(result.rowcount)
