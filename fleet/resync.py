"""Asking a machine to re-send what the fleet is missing (``cmd/resync``).

One resync per machine covers every open gap: it asks for a stock snapshot and every
event after the last contiguous seq. Ingest can ask at once when it finds a gap, or leave
it to :func:`request_due_resyncs`, which the service runs every few seconds: it asks for
gaps older than a grace period (two workers committing neighbouring seqs out of order
open a gap that closes a moment later) and asks again when a resync expired with gaps
still open. A machine without a registered key gets its gaps recorded and no command.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, select, update

from fleet.commands import CommandError, OutgoingCommand, issue_command, live_resync
from fleet.gaps import SeqTracker
from fleet.store.models import gaps, machines
from protocols.telemetry import CommandName, ResyncArgs

log = logging.getLogger(__name__)


def ask_for_resync(
    conn: Connection,
    tracker: SeqTracker,
    key: bytes | None,
    *,
    now: datetime,
    ttl: timedelta,
) -> OutgoingCommand | None:
    """Link the tracker's open gaps to a live resync, issuing one if there is none.

    Returns the command when a new one was issued (for the caller to publish)."""
    issued = None
    command_id = live_resync(conn, tracker.machine_id, now)
    if command_id is None:
        issued = _issue(conn, tracker.machine_id, tracker.last_seq, key, now=now, ttl=ttl)
        if issued is None:
            return None
        command_id = issued.id
    for gap in tracker.open:
        if gap.resync_command_id != command_id:
            gap.resync_command_id = command_id
            gap.dirty = True
    return issued


def request_due_resyncs(
    conn: Connection, *, now: datetime, grace: timedelta, ttl: timedelta
) -> list[OutgoingCommand]:
    """Issue a resync for every machine with a gap open longer than ``grace`` and no
    live resync. Locks each machine row, so concurrent workers issue one between them."""
    due = conn.execute(
        select(gaps.c.machine_id)
        .where(and_(gaps.c.filled_at.is_(None), gaps.c.detected_at <= now - grace))
        .distinct()
    ).scalars()
    issued: list[OutgoingCommand] = []
    for machine_id in sorted(due):
        row = conn.execute(
            select(machines.c.last_seq, machines.c.hmac_key)
            .where(machines.c.id == machine_id)
            .with_for_update()
        ).one()
        still_open = and_(gaps.c.machine_id == machine_id, gaps.c.filled_at.is_(None))
        if live_resync(conn, machine_id, now) is not None:
            continue
        if conn.execute(select(gaps.c.id).where(still_open).limit(1)).first() is None:
            continue  # filled since the first query
        command = _issue(conn, machine_id, row.last_seq, row.hmac_key, now=now, ttl=ttl)
        if command is not None:
            conn.execute(update(gaps).where(still_open).values(resync_command_id=command.id))
            issued.append(command)
    return issued


def _issue(
    conn: Connection,
    machine_id: str,
    after_seq: int,
    key: bytes | None,
    *,
    now: datetime,
    ttl: timedelta,
) -> OutgoingCommand | None:
    if key is None:
        log.warning(
            "machine %s is missing events after seq %d but has no registered key: "
            "no resync can be signed",
            machine_id,
            after_seq,
        )
        return None
    try:
        return issue_command(
            conn,
            machine_id,
            CommandName.RESYNC,
            ResyncArgs(after_seq=after_seq),
            now=now,
            ttl=ttl,
            key=key,
        )
    except CommandError as exc:
        log.warning("cannot ask %s to resync: %s", machine_id, exc)
        return None
