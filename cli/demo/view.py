"""What the dashboard shows, read from the fleet database (never from the machines: the
demo shows what the fleet knows, including its lag and its gaps)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from fleet.store.models import alarms, events, machines, sales, stock_levels


@dataclass(frozen=True, slots=True)
class MachineRow:
    machine_id: str
    online: bool | None
    backlog: int | None
    sales: int
    revenue: int
    stock: int
    capacity: int
    open_alarms: int
    last_seq: int
    max_seq: int


@dataclass(frozen=True, slots=True)
class AlarmRow:
    machine_id: str
    code: str
    where: str
    raised_at: datetime | None


@dataclass(frozen=True, slots=True)
class EventRow:
    machine_id: str
    seq: int
    kind: str
    ts: datetime
    summary: str


@dataclass(frozen=True, slots=True)
class FleetView:
    machines: list[MachineRow] = field(default_factory=list)
    sales_last_minute: int = 0
    sales_total: int = 0
    revenue_total: int = 0
    events_total: int = 0
    alarms: list[AlarmRow] = field(default_factory=list)
    recent: list[EventRow] = field(default_factory=list)


def _summary(kind: str, raw: str) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        return ""
    if kind == "sale":
        what = (body.get(k) for k in ("selection", "product", "price", "method"))
        return " ".join(str(x) for x in what)
    if kind == "alarm":
        return f"{body.get('code')} {body.get('state')} {body.get('selection') or ''}".strip()
    if kind == "refund":
        return f"{body.get('kind')} {body.get('amount')}"
    if kind == "cash":
        return f"{body.get('kind')} {body.get('amount')}"
    if kind == "review":  # a cabinet session queued for a person
        reasons = "; ".join(str(r) for r in body.get("reasons") or [])
        return f"{body.get('outcome')} due {body.get('due')}: {reasons}"
    if kind == "stock":
        return str(body.get("kind", ""))
    return ""


def read_view(engine: Engine, now: datetime, recent: int = 8) -> FleetView:
    with engine.connect() as conn:
        per_sales = {
            row.machine_id: (row.n, row.total)
            for row in conn.execute(
                select(
                    sales.c.machine_id,
                    func.count().label("n"),
                    func.coalesce(func.sum(sales.c.price), 0).label("total"),
                ).group_by(sales.c.machine_id)
            )
        }
        per_stock = {
            row.machine_id: (int(row.units or 0), int(row.room or 0))
            for row in conn.execute(
                select(
                    stock_levels.c.machine_id,
                    func.sum(stock_levels.c.count).label("units"),
                    func.sum(stock_levels.c.capacity).label("room"),
                ).group_by(stock_levels.c.machine_id)
            )
        }
        open_alarms = conn.execute(
            select(alarms.c.machine_id, alarms.c.code, alarms.c.device, alarms.c.selection,
                   alarms.c.raised_at, alarms.c.detail)
            .where(alarms.c.cleared_at.is_(None))
            .order_by(alarms.c.raised_at)
        ).all()  # fmt: skip
        per_alarms: dict[str, int] = {}
        for row in open_alarms:
            per_alarms[row.machine_id] = per_alarms.get(row.machine_id, 0) + 1
        rows = [
            MachineRow(
                machine_id=m.id,
                online=m.online,
                backlog=m.outbox_backlog,
                sales=per_sales.get(m.id, (0, 0))[0],
                revenue=int(per_sales.get(m.id, (0, 0))[1]),
                stock=per_stock.get(m.id, (0, 0))[0],
                capacity=per_stock.get(m.id, (0, 0))[1],
                open_alarms=per_alarms.get(m.id, 0),
                last_seq=m.last_seq,
                max_seq=m.max_seq,
            )
            for m in conn.execute(select(machines).order_by(machines.c.id))
        ]
        minute = conn.execute(
            select(func.count()).select_from(sales).where(sales.c.ts >= now - timedelta(minutes=1))
        ).scalar_one()
        tail = conn.execute(
            select(
                events.c.machine_id,
                events.c.seq,
                events.c.schema.label("schema_name"),
                events.c.ts,
                events.c.body,
            )
            .order_by(events.c.id.desc())
            .limit(recent)
        ).all()  # fmt: skip
        total_events = conn.execute(select(func.count()).select_from(events)).scalar_one()
    return FleetView(
        machines=rows,
        sales_last_minute=int(minute),
        sales_total=sum(r.sales for r in rows),
        revenue_total=sum(r.revenue for r in rows),
        events_total=int(total_events),
        alarms=[
            AlarmRow(
                a.machine_id,
                _alarm_name(a.code, a.detail),
                a.selection or a.device or "",
                a.raised_at,
            )
            for a in open_alarms
        ],
        recent=[
            EventRow(
                e.machine_id,
                e.seq,
                _kind(e.schema_name),
                e.ts,
                _summary(_kind(e.schema_name), e.body),
            )
            for e in tail
        ],
    )


def _alarm_name(code: str, detail: str | None) -> str:
    """``other`` says little: a cabinet puts its own kind first in the detail
    (``cabinet planogram: session 7: ...`` -> ``cabinet planogram``)."""
    if code == "other" and detail and detail.startswith("cabinet "):
        return detail.split(":", 1)[0]
    return code


def _kind(schema: str) -> str:
    """``vend.sale`` -> ``sale`` (the schema name carries the kind)."""
    return schema.rsplit(".", 1)[-1]
