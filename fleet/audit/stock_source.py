"""Load the stock history the inventory check needs: counts from the machines' stock
messages (``events`` of schema ``vend.stock``; ``stock_levels`` holds only the latest) and
fills and removals from service visits (``service_visits``)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from fleet.audit.records import StockEvent
from fleet.store.models import events, service_visits

STOCK_SCHEMA = "vend.stock"
_MOVES = {"fill": "fill", "remove": "remove"}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def load_stock(
    conn: Connection, machines: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[StockEvent]]:
    """Stock events of ``machines`` in [start, end), by machine. Unreadable bodies are
    skipped: they mark no count, so the windows around them are simply longer."""
    if not machines:
        return {}
    found: dict[str, list[StockEvent]] = defaultdict(list)
    rows = conn.execute(
        select(events.c.machine_id, events.c.seq, events.c.ts, events.c.body).where(
            events.c.machine_id.in_(machines),
            events.c.schema == STOCK_SCHEMA,
            events.c.ts >= start,
            events.c.ts < end,
        )
    )
    for machine, seq, ts, body in rows:
        for code, count, price in _counts(body):
            found[machine].append(StockEvent(machine, seq, _utc(ts), code, "count", count, price))
    visits = conn.execute(
        select(
            service_visits.c.machine_id,
            service_visits.c.seq,
            service_visits.c.opened_at,
            service_visits.c.closed_at,
            service_visits.c.actions,
        ).where(
            service_visits.c.machine_id.in_(machines),
            service_visits.c.opened_at >= start,
            service_visits.c.opened_at < end,
        )
    )
    for machine, seq, opened, closed, actions in visits:
        at = _utc(closed or opened)
        for kind, code, units in _moves(actions):
            found[machine].append(StockEvent(machine, seq, at, code, kind, units))
    return found


def _counts(body: str) -> list[tuple[str, int, int]]:
    try:
        data: Any = json.loads(body)
        return [(str(s["code"]), int(s["count"]), int(s["price"])) for s in data["selections"]]
    except (ValueError, TypeError, KeyError):
        return []


def _moves(actions: str) -> list[tuple[str, str, int]]:
    try:
        data: Any = json.loads(actions)
        return [
            (_MOVES[a["action"]], str(a["selection"]), abs(int(a["count"])))
            for a in data
            if a.get("action") in _MOVES and a.get("selection") and a.get("count") is not None
        ]
    except (ValueError, TypeError, KeyError, AttributeError):
        return []
