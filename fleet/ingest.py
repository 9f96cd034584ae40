"""Telemetry in, rows out: validate, store idempotently, project, track gaps, quarantine.

No MQTT here: callers hand in what arrived (topic, payload bytes, when) in batches. One
transaction per batch: events, projections, gap bookkeeping and any resync command
commit together or not at all. Idempotency is the events table's UNIQUE(machine_id,
seq) with ON CONFLICT DO NOTHING ... RETURNING: only rows that were really inserted are
projected, so a duplicate (QoS 1 redelivery, outbox re-send, resync) changes nothing.

Concurrency: the batch locks its machines' rows (``SELECT ... FOR UPDATE`` in machine id
order, so two workers cannot deadlock on each other) before touching their events; on
SQLite the whole transaction holds the write lock (``BEGIN IMMEDIATE``). So two workers
that receive neighbouring seqs of one machine take turns, and each sees the other's
committed seqs when it computes gaps.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from fleet.commands import DEFAULT_TTL, OutgoingCommand
from fleet.gaps import GapRange, load_trackers, save_trackers
from fleet.projections import project
from fleet.resync import ask_for_resync
from fleet.store.models import events, machines, quarantine, status_reports
from fleet.store.upsert import bulk_insert, bulk_update, insert_for
from protocols.telemetry import (
    Kind,
    StatusEnvelope,
    TelemetryEnvelope,
    TelemetryError,
    decode,
)

log = logging.getLogger(__name__)

RETRIES = 5
# PostgreSQL SQLSTATEs worth a retry: serialization failure, deadlock detected.
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})
_STATUS_SUFFIX = f"/{Kind.STATUS.value}"
_SALE_SUFFIX = f"/{Kind.SALE.value}"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Received:
    """One MQTT message as it arrived."""

    topic: str
    payload: bytes
    received_at: datetime


@dataclass
class IngestReport:
    stored: int = 0  # new events
    duplicates: int = 0
    statuses: int = 0  # new status reports
    quarantined: int = 0
    gaps_opened: int = 0
    commands: list[OutgoingCommand] = field(default_factory=list)  # to publish
    receipts_queued: int = 0  # e-receipts of new sales queued for transmission
    receipt_problems: int = 0  # new sales stored without their receipt queued (see sales)

    def add(self, other: IngestReport) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.statuses += other.statuses
        self.quarantined += other.quarantined
        self.gaps_opened += other.gaps_opened
        self.commands.extend(other.commands)
        self.receipts_queued += other.receipts_queued
        self.receipt_problems += other.receipt_problems


class Ingestor:
    """Runs batches against an engine: one transaction each, retried when the database
    asks for it; a batch the database rejects is retried message by message, and a
    single message it still rejects is quarantined, so ingest carries on."""

    def __init__(
        self,
        engine: Engine,
        *,
        resync_ttl: timedelta = DEFAULT_TTL,
        resync_at_once: bool = True,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.engine = engine
        self.resync_ttl = resync_ttl
        self.resync_at_once = resync_at_once
        self.clock = clock

    def ingest(self, messages: Sequence[Received]) -> IngestReport:
        """Store a batch; raises OperationalError when the database stays unreachable."""
        if not messages:
            return IngestReport()
        try:
            return self._with_retries(messages)
        except OperationalError:
            raise
        except (DBAPIError, OverflowError) as exc:
            # sqlite3 raises a bare OverflowError for an integer beyond 64 bits (a seq or an
            # amount no column can hold); PostgreSQL reports it as a DBAPIError.
            problem = exc.orig if isinstance(exc, DBAPIError) else exc
            if len(messages) == 1:
                return self._quarantine(messages[0], f"database rejected it: {problem}")
            log.warning("batch of %d rejected (%s); retrying one by one", len(messages), problem)
            report = IngestReport()
            for message in messages:
                report.add(self.ingest([message]))
            return report

    def _with_retries(self, messages: Sequence[Received]) -> IngestReport:
        for attempt in range(RETRIES):
            try:
                with self.engine.begin() as conn:
                    return ingest_batch(
                        conn,
                        messages,
                        now=self.clock(),
                        resync_ttl=self.resync_ttl,
                        resync_at_once=self.resync_at_once,
                    )
            except DBAPIError as exc:
                if attempt == RETRIES - 1 or not _transient(exc):
                    raise
                log.info("ingest retry %d after %s", attempt + 1, exc.orig)
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))  # noqa: S311
        raise AssertionError("unreachable")  # pragma: no cover

    def _quarantine(self, message: Received, reason: str) -> IngestReport:
        with self.engine.begin() as conn:
            conn.execute(quarantine.insert().values(**_quarantine_row(message, reason)))
        log.warning("quarantined a message on %s: %s", message.topic, reason)
        return IngestReport(quarantined=1)


def _transient(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _RETRY_SQLSTATES:
        return True
    return isinstance(exc, OperationalError) and "locked" in str(exc.orig)


def _quarantine_row(message: Received, reason: str) -> dict[str, Any]:
    return {
        "received_at": message.received_at,
        "topic": message.topic,
        "payload": bytes(message.payload),
        "reason": reason,
    }


def ingest_batch(
    conn: Connection,
    messages: Sequence[Received],
    *,
    now: datetime,
    resync_ttl: timedelta = DEFAULT_TTL,
    resync_at_once: bool = True,
) -> IngestReport:
    """Decode and store a batch inside the caller's transaction; garbage is quarantined."""
    decoded: list[tuple[TelemetryEnvelope, datetime]] = []
    rejected: list[dict[str, Any]] = []
    dropped: dict[tuple[str, int], str] = {}
    for message in messages:
        if not message.payload and message.topic.endswith(_STATUS_SUFFIX):
            continue  # someone cleared a retained status: nothing to store
        try:
            decoded.append((_decode(message, dropped), message.received_at))
        except TelemetryError as exc:
            rejected.append(_quarantine_row(message, exc.reason))
            log.warning("quarantined a message on %s: %s", message.topic, exc.reason)
    if rejected:
        conn.execute(quarantine.insert(), rejected)
    report = store_envelopes(
        conn,
        decoded,
        now=now,
        resync_ttl=resync_ttl,
        resync_at_once=resync_at_once,
        receipt_problems=dropped,
    )
    report.quarantined += len(rejected)
    return report


def _decode(message: Received, dropped: dict[tuple[str, int], str]) -> TelemetryEnvelope:
    """``decode``, except that a sale whose only fault is its e-receipt is kept without the
    receipt (a receipt problem never costs a sale); why goes into ``dropped``."""
    try:
        return decode(message.topic, message.payload)
    except TelemetryError as exc:
        reason = exc.reason
        stripped = None
        if message.topic.endswith(_SALE_SUFFIX) and "body.receipt" in reason:
            stripped = _without_receipt(message.payload)
        if stripped is None:
            raise
    try:
        env = decode(message.topic, stripped)
    except TelemetryError:
        raise TelemetryError(reason) from None  # more is wrong than the receipt
    why = f"the machine's receipt is invalid: {reason}"
    dropped[(env.machine_id, env.seq)] = why
    log.warning("sale %s seq %d stored without its receipt: %s", env.machine_id, env.seq, why)
    return env


def _without_receipt(payload: bytes) -> bytes | None:
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    body = data.get("body") if isinstance(data, dict) else None
    if not isinstance(body, dict) or body.get("receipt") is None:
        return None
    body = {name: value for name, value in body.items() if name != "receipt"}
    return json.dumps({**data, "body": body}, ensure_ascii=False).encode()


@dataclass
class _MachineRow:
    last_seq: int
    max_seq: int
    boot_id: int | None
    hmac_key: bytes | None
    online: bool | None
    status_at: datetime | None


def store_envelopes(
    conn: Connection,
    items: Sequence[tuple[TelemetryEnvelope, datetime]],
    *,
    now: datetime,
    resync_ttl: timedelta = DEFAULT_TTL,
    resync_at_once: bool = True,
    receipt_problems: Mapping[tuple[str, int], str] | None = None,
) -> IngestReport:
    """Store decoded envelopes (with their received-at times) inside the caller's
    transaction. ``resync_at_once=False`` records gaps and leaves the asking to
    :func:`fleet.resync.request_due_resyncs`. ``receipt_problems``: sales decoded without
    the receipt they came with, and why, by (machine_id, seq)."""
    report = IngestReport()
    if not items:
        return report
    statuses = [(env, at) for env, at in items if isinstance(env, StatusEnvelope)]
    unique: dict[tuple[str, int], tuple[TelemetryEnvelope, datetime]] = {}
    for env, at in items:
        if not isinstance(env, StatusEnvelope):
            unique.setdefault((env.machine_id, env.seq), (env, at))
    batch_duplicates = len(items) - len(statuses) - len(unique)
    ordered = [unique[key] for key in sorted(unique)]

    rows = _lock_machines(conn, items)
    new = _insert_events(conn, ordered)
    report.stored = len(new)
    report.duplicates = len(ordered) - len(new) + batch_duplicates

    if new:
        _track_gaps(
            conn,
            new,
            rows,
            now=now,
            resync_ttl=resync_ttl,
            resync_at_once=resync_at_once,
            report=report,
        )
        receipts = project(
            conn, [env for env, _ in new], now=now, receipt_problems=receipt_problems
        )
        report.receipts_queued = receipts.new
        report.receipt_problems = len(receipts.reasons)
        _update_positions(conn, new, rows)
    if statuses:
        report.statuses = _store_statuses(conn, statuses, rows)
    return report


def _lock_machines(
    conn: Connection, items: Sequence[tuple[TelemetryEnvelope, datetime]]
) -> dict[str, _MachineRow]:
    first: dict[str, datetime] = {}
    for env, at in items:
        first[env.machine_id] = min(at, first.get(env.machine_id, at))
    ids = sorted(first)
    bulk_insert(
        conn, machines, [_new_machine(mid, first[mid]) for mid in ids], skip_conflicts_on=["id"]
    )
    locked = conn.execute(
        select(
            machines.c.id,
            machines.c.last_seq,
            machines.c.max_seq,
            machines.c.boot_id,
            machines.c.hmac_key,
            machines.c.online,
            machines.c.status_at,
        )
        .where(machines.c.id.in_(ids))
        .order_by(machines.c.id)
        .with_for_update()
    )
    return {
        row.id: _MachineRow(
            row.last_seq, row.max_seq, row.boot_id, row.hmac_key, row.online, row.status_at
        )
        for row in locked
    }


def _new_machine(machine_id: str, at: datetime) -> dict[str, Any]:
    return {"id": machine_id, "first_seen": at, "last_seen": at, "last_seq": 0, "max_seq": 0}


def _insert_events(
    conn: Connection, ordered: Sequence[tuple[TelemetryEnvelope, datetime]]
) -> list[tuple[TelemetryEnvelope, datetime]]:
    rows = [
        {
            "machine_id": env.machine_id,
            "seq": env.seq,
            "msg_id": env.msg_id,
            "schema": env.schema_name,
            "v": env.v,
            "boot_id": env.boot_id,
            "ts": env.ts,
            "received_at": at,
            "body": env.body.model_dump_json(),
        }
        for env, at in ordered
    ]
    new = bulk_insert(
        conn,
        events,
        rows,
        skip_conflicts_on=("machine_id", "seq"),
        returning=("machine_id", "seq"),
    )
    inserted = {(machine_id, seq) for machine_id, seq in new}
    return [(env, at) for env, at in ordered if (env.machine_id, env.seq) in inserted]


def _track_gaps(
    conn: Connection,
    new: Sequence[tuple[TelemetryEnvelope, datetime]],
    rows: dict[str, _MachineRow],
    *,
    now: datetime,
    resync_ttl: timedelta,
    resync_at_once: bool,
    report: IngestReport,
) -> None:
    touched = sorted({env.machine_id for env, _ in new})
    trackers = load_trackers(
        conn, {mid: (rows[mid].last_seq, rows[mid].max_seq) for mid in touched}
    )
    opened: dict[str, list[GapRange]] = defaultdict(list)
    for env, _ in new:  # sorted by (machine, seq)
        gap = trackers[env.machine_id].observe(env.seq, now)
        if gap is not None:
            opened[env.machine_id].append(gap)
    for mid, found in opened.items():
        report.gaps_opened += len(found)
        if resync_at_once:
            command = ask_for_resync(
                conn, trackers[mid], rows[mid].hmac_key, now=now, ttl=resync_ttl
            )
            if command is not None:
                report.commands.append(command)
    save_trackers(conn, trackers.values())
    for mid, tracker in trackers.items():
        rows[mid].last_seq, rows[mid].max_seq = tracker.last_seq, tracker.max_seq


def _update_positions(
    conn: Connection,
    new: Sequence[tuple[TelemetryEnvelope, datetime]],
    rows: dict[str, _MachineRow],
) -> None:
    seen: dict[str, datetime] = {}
    boots: dict[str, int] = {}
    for env, at in new:
        seen[env.machine_id] = max(at, seen.get(env.machine_id, at))
        boots[env.machine_id] = max(env.boot_id, boots.get(env.machine_id, env.boot_id))
    params = []
    for mid, at in seen.items():
        row = rows[mid]
        row.boot_id = max(boots[mid], row.boot_id if row.boot_id is not None else -1)
        params.append(
            {
                "id": mid,
                "last_seen": at,
                "last_seq": row.last_seq,
                "max_seq": row.max_seq,
                "boot_id": row.boot_id,
            }
        )
    bulk_update(conn, machines, "id", params)


def _store_statuses(
    conn: Connection,
    statuses: Sequence[tuple[TelemetryEnvelope, datetime]],
    rows: dict[str, _MachineRow],
) -> int:
    stmt = (
        insert_for(conn, status_reports)
        .values(
            [
                {
                    "machine_id": env.machine_id,
                    "boot_id": env.boot_id,
                    "seq": env.seq,
                    "online": env.body.online,
                    "ts": env.ts,
                    "received_at": at,
                    "body": env.body.model_dump_json(),
                }
                for env, at in statuses
                if isinstance(env, StatusEnvelope)
            ]
        )
        .on_conflict_do_nothing(index_elements=["machine_id", "boot_id", "seq", "online"])
        .returning(
            status_reports.c.machine_id,
            status_reports.c.boot_id,
            status_reports.c.seq,
            status_reports.c.online,
        )
    )
    fresh = {tuple(row) for row in conn.execute(stmt)}
    newest: dict[str, tuple[StatusEnvelope, datetime]] = {}
    for env, at in statuses:
        assert isinstance(env, StatusEnvelope)
        if (env.machine_id, env.boot_id, env.seq, env.body.online) not in fresh:
            continue
        row = rows[env.machine_id]
        if row.status_at is not None and _status_order(env.ts, env.body.online) < _status_order(
            row.status_at, bool(row.online)
        ):
            continue  # older than the status in force: history only
        row.status_at, row.online = env.ts, env.body.online
        newest[env.machine_id] = (env, at)
    for mid, (env, at) in newest.items():
        body = env.body
        conn.execute(
            update(machines)
            .where(machines.c.id == mid)
            .values(
                online=body.online,
                boot_id=env.boot_id,
                firmware=body.firmware,
                config_version=body.config_version,
                outbox_backlog=body.outbox_backlog,
                status_at=env.ts,
                last_seen=at,
            )
        )
    return len(fresh)


def _status_order(ts: datetime, online: bool) -> tuple[datetime, int]:
    # The last will is composed at connect time, so it carries the same ts as the
    # online status it follows: on a tie, offline is the later state.
    return (ts.astimezone(UTC), 0 if online else 1)
