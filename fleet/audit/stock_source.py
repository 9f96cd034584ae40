"""The stock history the inventory check needs, from the machines' own messages in the
``events`` table (``stock_levels`` holds only the latest level, ``service_visits`` only
the visit's last message):

* every row of a ``vend.stock`` message is a **count**: what the machine believed was in
  the selection at that ``seq`` (a snapshot after boot, a resync or a planogram, or a
  change). A count observes; it never moves product;
* a ``vend.service`` visit's actions are the movements: ``fill`` and ``remove`` explain
  a change of the count, a ``count`` correction (or a fill that lowered the level) does
  not: it is product found missing (or over). The controller reports the visit's actions
  when the door closes, after the stock changes they caused, so they are placed where
  the visit opened, and the counts while the door was open are dropped: the check never
  starts or ends a window in the middle of a visit;
* a snapshot that no longer lists a selection (a planogram dropped it) took its units
  out: a removal, and a count of zero.

:func:`stock_history` is the pure half (messages in, events out); :func:`load_stock`
reads the messages.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from fleet.audit.records import StockEvent
from fleet.store.models import events

STOCK_SCHEMA = "vend.stock"
SERVICE_SCHEMA = "vend.service"
_OPEN_ENDED = 2**63


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One stored telemetry message of a machine: its sequence number, time, schema and
    body (the JSON the machine sent)."""

    seq: int
    ts: datetime
    schema: str
    body: str


@dataclass(slots=True)
class _Visit:
    opened: int  # seq of the visit's first message
    at: datetime
    closed: int | None = None
    actions: list[Any] = field(default_factory=list)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def load_stock(
    conn: Connection, machines: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[StockEvent]]:
    """Stock events of ``machines`` from their messages in [start, end), by machine."""
    if not machines:
        return {}
    rows = conn.execute(
        select(events.c.machine_id, events.c.seq, events.c.ts, events.c.schema, events.c.body)
        .where(
            events.c.machine_id.in_(machines),
            events.c.schema.in_((STOCK_SCHEMA, SERVICE_SCHEMA)),
            events.c.ts >= start,
            events.c.ts < end,
        )
        .order_by(events.c.machine_id, events.c.seq)
    )
    messages: dict[str, list[StoredMessage]] = defaultdict(list)
    for machine, seq, ts, schema, body in rows:
        messages[machine].append(StoredMessage(seq, _utc(ts), schema, body))
    return {machine: stock_history(machine, found) for machine, found in messages.items()}


def stock_history(machine: str, messages: Iterable[StoredMessage]) -> list[StockEvent]:
    """The counts and movements of one machine's stock and service messages, by ``seq``.
    Unreadable bodies are skipped: they mark no count, so the windows around them are
    simply longer."""
    counts: list[StockEvent] = []
    moves: list[StockEvent] = []
    visits: dict[datetime, _Visit] = {}
    held: dict[str, StockEvent] = {}  # the last count of each selection listed
    for message in sorted(messages, key=lambda m: m.seq):
        data = _json(message.body)
        if message.schema == STOCK_SCHEMA:
            rows = _counts(machine, message, data)
            if data.get("kind") == "snapshot" and rows:
                listed = {row.selection for row in rows}
                counts += [
                    _dropped(held.pop(c), message, moves) for c in sorted(set(held) - listed)
                ]
            counts += rows
            held.update((row.selection, row) for row in rows)
        elif message.schema == SERVICE_SCHEMA:
            _visit_message(visits, message, data)
    spans = _spans(visits)
    for visit, _ in spans:
        moves += _moves(machine, visit)
    doors = [(visit.opened, end) for visit, end in spans]  # sorted, never overlapping
    opens = [opened for opened, _ in doors]

    def door_open(seq: int) -> bool:
        n = bisect.bisect_left(opens, seq) - 1
        return n >= 0 and seq < doors[n][1]

    settled = [c for c in counts if not door_open(c.seq)]
    return sorted([*settled, *moves], key=lambda e: (e.seq, e.selection, e.kind))


def _dropped(last: StockEvent, snapshot: StoredMessage, moves: list[StockEvent]) -> StockEvent:
    """A selection the planogram dropped: its units went out, and it holds nothing now."""
    if last.units:
        moves.append(
            StockEvent(
                last.machine, snapshot.seq, snapshot.ts, last.selection, "remove", last.units
            )
        )
    return StockEvent(
        last.machine, snapshot.seq, snapshot.ts, last.selection, "count", 0, last.price
    )


def _visit_message(visits: dict[datetime, _Visit], message: StoredMessage, data: Any) -> None:
    """The messages of one visit share its ``opened_at``; the closing one lists the actions."""
    try:
        opened = _utc(datetime.fromisoformat(str(data["opened_at"])))
    except (KeyError, ValueError, TypeError):
        return
    visit = visits.setdefault(opened, _Visit(message.seq, message.ts))
    if data.get("closed_at") is not None:
        visit.closed = message.seq
        actions = data.get("actions")
        visit.actions = actions if isinstance(actions, list) else []


def _spans(visits: dict[datetime, _Visit]) -> list[tuple[_Visit, int]]:
    """Each visit with the seq where its door closed. A visit whose close never arrived
    (the controller restarted with the door open) ends where the next one opens; the last
    one may still be open."""
    ordered = sorted(visits.values(), key=lambda v: v.opened)
    spans = []
    for n, visit in enumerate(ordered):
        following = ordered[n + 1].opened if n + 1 < len(ordered) else _OPEN_ENDED
        spans.append((visit, visit.closed if visit.closed is not None else following))
    return spans


def _moves(machine: str, visit: _Visit) -> list[StockEvent]:
    """A visit's stock actions, placed where it opened: before every count it changed."""
    out = []
    for action in visit.actions:
        if not isinstance(action, dict):
            continue
        kind, code, units = action.get("action"), action.get("selection"), action.get("count")
        if not code or not isinstance(units, int) or isinstance(units, bool) or not units:
            continue
        if kind == "fill" and units > 0:
            move = "fill"
        elif kind == "remove":
            move, units = "remove", abs(units)
        elif kind in {"fill", "count"}:
            move = "correct"  # a level set by hand: what it changes, nothing explains
        else:
            continue
        out.append(StockEvent(machine, visit.opened, visit.at, str(code), move, units))
    return out


def _json(body: str) -> Any:
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _counts(machine: str, message: StoredMessage, data: Any) -> list[StockEvent]:
    try:
        return [
            StockEvent(
                machine,
                message.seq,
                message.ts,
                str(row["code"]),
                "count",
                int(row["count"]),
                int(row["price"]),
                int(row["delta"]) if row.get("delta") is not None else None,
            )
            for row in data["selections"]
        ]
    except (KeyError, TypeError, ValueError, AttributeError):
        return []
