"""The operators' read side: fleet status, machines, alarms, sales, the event tail.

Plain SQL over the fleet's tables, aggregated in the database (GROUP BY, SUM, COUNT) so a
query costs what its answer needs, not what the history holds: sales read ``ix_sales_ts``
for their period, alarms ``ix_alarms_open``, gaps ``ix_gaps_open``. Results are frozen
dataclasses of plain values; money stays integer minor units next to its currency.
Timestamps come back timezone-aware in UTC (SQLite and ``timestamp`` columns return them
naive, and everything stored is UTC).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, select

from fleet.store.models import (
    alarms,
    cash_movements,
    commands,
    events,
    gaps,
    machines,
    quarantine,
    sales,
    stock_levels,
)
from protocols.money import Money
from protocols.telemetry import CashKind, PaymentMethod


class NotFoundError(LookupError):
    """A machine (or selection) the fleet does not know."""


def utc(value: datetime | None) -> datetime | None:
    """Stored timestamps are UTC; the drivers may hand them back naive."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _bound(value: datetime) -> datetime:
    # SQLite stores the wall time of what it is given: compare in UTC, always.
    if value.tzinfo is None:
        raise ValueError("query bounds must be timezone-aware")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class MoneyTotal:
    currency: str
    count: int
    total: int  # minor units


@dataclass(frozen=True, slots=True)
class FleetStatus:
    machines: int
    online: int
    offline: int
    unknown: int  # never sent a status
    sales_since: datetime
    sales: tuple[MoneyTotal, ...]  # one per currency
    open_alarms: int
    critical_alarms: int
    outbox_backlog: int  # events waiting on machines, summed
    machines_with_backlog: int
    open_gaps: int
    missing_events: int
    quarantined: int


@dataclass(frozen=True, slots=True)
class MachineSummary:
    id: str
    online: bool | None
    last_seen: datetime | None
    firmware: str | None
    config_version: str | None
    boot_id: int | None
    last_seq: int
    max_seq: int
    outbox_backlog: int | None
    keyed: bool  # has an HMAC key, so commands can be signed
    open_alarms: int
    open_gaps: int
    selections: int
    empty: int
    below_par: int


def fleet_status(conn: Connection, *, sales_since: datetime) -> FleetStatus:
    start = _bound(sales_since)
    m = conn.execute(
        select(
            func.count(),
            func.count().filter(machines.c.online.is_(True)),
            func.count().filter(machines.c.online.is_(False)),
            func.coalesce(func.sum(machines.c.outbox_backlog), 0),
            func.count().filter(machines.c.outbox_backlog > 0),
        ).select_from(machines)
    ).one()
    a = conn.execute(
        select(func.count(), func.count().filter(alarms.c.severity == "critical")).where(
            open_alarm()
        )
    ).one()
    g = conn.execute(
        select(func.count(), func.coalesce(func.sum(gaps.c.to_seq - gaps.c.from_seq + 1), 0)).where(
            gaps.c.filled_at.is_(None)
        )
    ).one()
    return FleetStatus(
        machines=m[0],
        online=m[1],
        offline=m[2],
        unknown=m[0] - m[1] - m[2],
        sales_since=start,
        sales=_sales_totals(conn, sales.c.ts >= start),
        open_alarms=a[0],
        critical_alarms=a[1],
        outbox_backlog=int(m[3]),
        machines_with_backlog=m[4],
        open_gaps=g[0],
        missing_events=int(g[1]),
        quarantined=conn.execute(select(func.count()).select_from(quarantine)).scalar_one(),
    )


def open_alarm() -> ColumnElement[bool]:
    """The condition an open alarm row meets (fleet.locations rolls them up too)."""
    # A clear that overtook its raise leaves raised_at NULL: that alarm is not open.
    return and_(alarms.c.cleared_at.is_(None), alarms.c.raised_at.is_not(None))


def _sales_totals(conn: Connection, *where: ColumnElement[bool]) -> tuple[MoneyTotal, ...]:
    rows = conn.execute(
        select(sales.c.currency, func.count(), func.coalesce(func.sum(sales.c.price), 0))
        .where(*where)
        .group_by(sales.c.currency)
        .order_by(sales.c.currency)
    )
    return tuple(MoneyTotal(row[0], row[1], int(row[2])) for row in rows)


def list_machines(conn: Connection, machine_ids: list[str] | None = None) -> list[MachineSummary]:
    """Every machine (or those named), by id, with counts from one GROUP BY per table."""
    chosen = machines.c.id.in_(machine_ids) if machine_ids is not None else None
    alarm_counts = _counts(conn, alarms.c.machine_id, open_alarm())
    gap_counts = _counts(conn, gaps.c.machine_id, gaps.c.filled_at.is_(None))
    stock = {
        row[0]: row[1:]
        for row in conn.execute(
            select(
                stock_levels.c.machine_id,
                func.count(),
                func.count().filter(stock_levels.c.count == 0),
                func.count().filter(stock_levels.c.count < stock_levels.c.par),
            ).group_by(stock_levels.c.machine_id)
        )
    }
    query = select(machines).order_by(machines.c.id)
    if chosen is not None:
        query = query.where(chosen)
    result = []
    for row in conn.execute(query):
        selections, empty, below = stock.get(row.id, (0, 0, 0))
        result.append(
            MachineSummary(
                id=row.id,
                online=row.online,
                last_seen=utc(row.last_seen),
                firmware=row.firmware,
                config_version=row.config_version,
                boot_id=row.boot_id,
                last_seq=row.last_seq,
                max_seq=row.max_seq,
                outbox_backlog=row.outbox_backlog,
                keyed=row.hmac_key is not None,
                open_alarms=alarm_counts.get(row.id, 0),
                open_gaps=gap_counts.get(row.id, 0),
                selections=selections,
                empty=empty,
                below_par=below,
            )
        )
    return result


def _counts(conn: Connection, key: Any, where: ColumnElement[bool]) -> dict[str, int]:
    return {
        row[0]: row[1] for row in conn.execute(select(key, func.count()).where(where).group_by(key))
    }


def require_machine(conn: Connection, machine_id: str) -> None:
    if conn.execute(select(machines.c.id).where(machines.c.id == machine_id)).first() is None:
        raise NotFoundError(f"unknown machine {machine_id!r}: the fleet has never heard of it")


# --- one machine ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SelectionLevel:
    selection: str
    product: str
    count: int
    capacity: int
    par: int
    price: int
    currency: str
    in_service: bool
    reason: str | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class TubeLevel:
    coin_type: int
    value: int
    count: int


@dataclass(frozen=True, slots=True)
class CashLevels:
    """What the fleet knows of a machine's cash: tube counts from the newest cash event
    that carried them, the last collection, and cash sales since it (what went into the
    tubes and the cash box together)."""

    currency: str | None
    tubes: tuple[TubeLevel, ...]
    tubes_at: datetime | None
    last_collection_at: datetime | None
    last_collection_amount: int | None
    cash_sales_since_collection: int
    cash_sales_count: int


@dataclass(frozen=True, slots=True)
class AlarmRow:
    id: int
    machine_id: str
    code: str
    severity: str
    device: str | None
    selection: str | None
    detail: str
    raised_at: datetime | None
    cleared_at: datetime | None


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    machine_id: str
    seq: int
    schema: str
    ts: datetime
    received_at: datetime
    summary: str


@dataclass(frozen=True, slots=True)
class CommandRow:
    id: str
    name: str
    args: str
    issued_at: datetime | None
    expires_at: datetime | None
    published_at: datetime | None
    ack_outcome: str | None
    ack_detail: str | None


@dataclass(frozen=True, slots=True)
class MachineDetail:
    machine: MachineSummary
    stock: tuple[SelectionLevel, ...]
    cash: CashLevels
    alarms: tuple[AlarmRow, ...]  # open ones
    events: tuple[EventRow, ...]  # the newest, oldest first
    commands: tuple[CommandRow, ...]  # the newest, newest first


def machine_detail(
    conn: Connection, machine_id: str, *, last_events: int = 10, last_commands: int = 5
) -> MachineDetail:
    found = list_machines(conn, [machine_id])
    if not found:
        require_machine(conn, machine_id)
    stock = tuple(
        SelectionLevel(
            selection=r.selection,
            product=r.product,
            count=r.units,
            capacity=r.capacity,
            par=r.par,
            price=r.price,
            currency=r.currency,
            in_service=r.in_service,
            reason=r.reason,
            updated_at=utc(r.updated_at),
        )
        for r in conn.execute(
            select(*stock_levels.c, stock_levels.c.count.label("units"))
            .where(stock_levels.c.machine_id == machine_id)
            .order_by(stock_levels.c.selection)
        )
    )
    recent = conn.execute(
        select(commands)
        .where(commands.c.machine_id == machine_id)
        .order_by(commands.c.issued_at.desc(), commands.c.id)
        .limit(last_commands)
    )
    return MachineDetail(
        machine=found[0],
        stock=stock,
        cash=cash_levels(conn, machine_id),
        alarms=tuple(list_alarms(conn, machine_id=machine_id)),
        events=tuple(recent_events(conn, last_events, machine_id=machine_id)),
        commands=tuple(
            CommandRow(
                r.id,
                r.name,
                r.args,
                utc(r.issued_at),
                utc(r.expires_at),
                utc(r.published_at),
                r.ack_outcome,
                r.ack_detail,
            )
            for r in recent
        ),
    )


def cash_levels(conn: Connection, machine_id: str) -> CashLevels:
    mine = cash_movements.c.machine_id == machine_id
    tubes_row = conn.execute(
        select(cash_movements.c.tubes, cash_movements.c.ts, cash_movements.c.currency)
        .where(mine, cash_movements.c.tubes.is_not(None))
        .order_by(cash_movements.c.seq.desc())
        .limit(1)
    ).first()
    collection = conn.execute(
        select(cash_movements.c.seq, cash_movements.c.ts, cash_movements.c.amount)
        .where(mine, cash_movements.c.kind == CashKind.COLLECTION.value)
        .order_by(cash_movements.c.seq.desc())
        .limit(1)
    ).first()
    after = [sales.c.machine_id == machine_id, sales.c.method == PaymentMethod.CASH.value]
    if collection is not None:
        after.append(sales.c.seq > collection.seq)
    since = _sales_totals(conn, *after)
    tubes: tuple[TubeLevel, ...] = ()
    if tubes_row is not None:
        tubes = tuple(
            TubeLevel(int(t["coin_type"]), int(t["value"]), int(t["count"]))
            for t in _json_list(tubes_row.tubes)
        )
    currency = tubes_row.currency if tubes_row is not None else None
    return CashLevels(
        currency=currency or (since[0].currency if since else None),
        tubes=tubes,
        tubes_at=utc(tubes_row.ts) if tubes_row is not None else None,
        last_collection_at=utc(collection.ts) if collection is not None else None,
        last_collection_amount=collection.amount if collection is not None else None,
        cash_sales_since_collection=sum(t.total for t in since),
        cash_sales_count=sum(t.count for t in since),
    )


def _json_list(text: str) -> list[dict[str, Any]]:
    data = json.loads(text)
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


# --- alarms ----------------------------------------------------------------------------


def list_alarms(
    conn: Connection,
    *,
    open_only: bool = True,
    machine_id: str | None = None,
    severity: str | None = None,
    code: str | None = None,
    since: datetime | None = None,
    limit: int = 500,
) -> list[AlarmRow]:
    """Alarms, newest first; ``since`` keeps those raised (or cleared) at or after it."""
    where: list[ColumnElement[bool]] = [open_alarm()] if open_only else []
    if machine_id is not None:
        where.append(alarms.c.machine_id == machine_id)
    if severity is not None:
        where.append(alarms.c.severity == severity)
    if code is not None:
        where.append(alarms.c.code == code)
    when = func.coalesce(alarms.c.raised_at, alarms.c.cleared_at)
    if since is not None:
        where.append(when >= _bound(since))
    rows = conn.execute(
        select(alarms).where(*where).order_by(when.desc(), alarms.c.id.desc()).limit(limit)
    )
    return [
        AlarmRow(
            r.id,
            r.machine_id,
            r.code,
            r.severity,
            r.device,
            r.selection,
            r.detail,
            utc(r.raised_at),
            utc(r.cleared_at),
        )
        for r in rows
    ]


# --- sales -------------------------------------------------------------------------------


class SalesGrouping(enum.StrEnum):
    MACHINE = "machine"
    PRODUCT = "product"
    HOUR = "hour"


@dataclass(frozen=True, slots=True)
class SalesRow:
    key: str  # machine id, product name, or the UTC hour as YYYY-MM-DDTHH:00:00Z
    currency: str
    count: int
    total: int  # minor units


def sales_by(
    conn: Connection, *, start: datetime, end: datetime, by: SalesGrouping
) -> list[SalesRow]:
    """Sales in [start, end) grouped by machine, product or UTC hour (and currency), in
    key order; hours without sales are left out."""
    lo, hi = _bound(start), _bound(end)
    if hi <= lo:
        raise ValueError(f"empty period: {lo.isoformat()} is not before {hi.isoformat()}")
    if by is SalesGrouping.MACHINE:
        key: Any = sales.c.machine_id
    elif by is SalesGrouping.PRODUCT:
        key = sales.c.product
    elif conn.dialect.name == "sqlite":
        key = func.strftime("%Y-%m-%dT%H:00:00Z", sales.c.ts)
    else:
        key = func.to_char(func.date_trunc("hour", sales.c.ts), 'YYYY-MM-DD"T"HH24:00:00"Z"')
    rows = conn.execute(
        select(key, sales.c.currency, func.count(), func.coalesce(func.sum(sales.c.price), 0))
        .where(sales.c.ts >= lo, sales.c.ts < hi)
        .group_by(key, sales.c.currency)
        .order_by(key, sales.c.currency)
    )
    return [SalesRow(str(r[0]), r[1], r[2], int(r[3])) for r in rows]


def sales_totals(conn: Connection, *, start: datetime, end: datetime) -> tuple[MoneyTotal, ...]:
    return _sales_totals(conn, sales.c.ts >= _bound(start), sales.c.ts < _bound(end))


# --- events ------------------------------------------------------------------------------


def _event_rows(conn: Connection, query: Any) -> list[EventRow]:
    return [
        EventRow(
            id=r.id,
            machine_id=r.machine_id,
            seq=r.seq,
            schema=r.schema,
            ts=utc(r.ts) or r.ts,
            received_at=utc(r.received_at) or r.received_at,
            summary=describe_event(r.schema, r.body),
        )
        for r in conn.execute(query)
    ]


def recent_events(conn: Connection, count: int, *, machine_id: str | None = None) -> list[EventRow]:
    """The newest ``count`` stored events, oldest first."""
    query = select(events).order_by(events.c.id.desc()).limit(max(count, 0))
    if machine_id is not None:
        query = query.where(events.c.machine_id == machine_id)
    return list(reversed(_event_rows(conn, query)))


def events_after(
    conn: Connection, cursor: int, *, machine_id: str | None = None, limit: int = 500
) -> list[EventRow]:
    """Events stored after the one with id ``cursor``, in storage order (for following)."""
    query = select(events).where(events.c.id > cursor).order_by(events.c.id).limit(limit)
    if machine_id is not None:
        query = query.where(events.c.machine_id == machine_id)
    return _event_rows(conn, query)


def last_event_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one())


def describe_event(schema: str, body: str) -> str:
    """One line about a stored event body, for people (``vend.sale`` -> what sold, for
    how much); a body this build cannot read is described as such, never raised."""
    try:
        data = json.loads(body)
    except ValueError:
        return "(unreadable body)"
    if not isinstance(data, dict):
        return "(unreadable body)"
    try:
        return _describe(schema, data)
    except (KeyError, TypeError, ValueError):
        return "(unreadable body)"


def _money(data: dict[str, Any], field: str) -> str:
    return Money(int(data[field]), str(data["currency"])).format()


def _describe(schema: str, d: dict[str, Any]) -> str:
    if schema == "vend.sale":
        return f"{d['selection']} {d['product']} {_money(d, 'price')} {d['method']}"
    if schema == "vend.refund":
        return f"{d['kind']} {_money(d, 'amount')} {d.get('reason', '')}".rstrip()
    if schema == "vend.cash":
        return f"{d['kind']} {_money(d, 'amount')} {d.get('detail', '')}".rstrip()
    if schema == "vend.stock":
        rows = d["selections"]
        codes = ", ".join(f"{r['code']}={r['count']}" for r in rows[:6])
        more = f" +{len(rows) - 6}" if len(rows) > 6 else ""
        return f"{d['kind']}: {codes}{more}"
    if schema == "vend.alarm":
        where = " ".join(str(d[k]) for k in ("device", "selection") if d.get(k))
        parts = [d["state"], d["code"], d["severity"], where, d.get("detail", "")]
        return " ".join(str(p) for p in parts if p)
    if schema == "vend.service":
        return f"service visit by {d.get('operator') or '?'}: {len(d['actions'])} action(s)"
    if schema == "vend.dex":
        return "DEX read" + (" (counters reset)" if d.get("reset") else "")
    if schema == "vend.ack":
        return f"{d['name']} {d['outcome']} {d.get('detail', '')}".rstrip()
    return schema
