"""The cabinet's write-ahead log: every step of a cabinet session, durable before it acts.

Cabinet sessions live beside the vend journal, in the same SQLite file, in a table of
their own (``cabinet_log``), so the vend journal's inputs and their replay stay as they
are. A row is one JSON record of a session:

``started``   session id, reader (and the card's media id), the cabinet's boot count,
              the baseline inventory, the planogram and policy in force (so a replay
              never depends on a config that changed since) -- written before the
              VEND REQUEST;
``event``     one :mod:`protocols.cabinet.session` event with the ``now`` it was fed
              with -- written before the actions it produced are carried out (the
              UNLOCK after ``PaymentApproved``, the capture after ``SessionReported``);
``payment``   a reader step about to be taken (capture, refund, recharge, release);
``closed``    the session is over: what was charged, and how, with the items sold
              (the DEX audit counts them, :mod:`controller.cabinet_audit`).

Replaying a session's ``event`` rows into a new :class:`CabinetSession` built from its
``started`` row gives back the same session (the pure session is deterministic), so a
restarted controller knows exactly where each open session stood.

Rows are written with :meth:`controller.journal.Journal.enqueue_with`, in the same
transaction as the telemetry they cause (alarms, reviews, the sale).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from protocols.cabinet import session as cs
from protocols.cabinet.errors import CabinetError
from protocols.cabinet.model import (
    CabinetPolicy,
    ChargeRule,
    LineKind,
    Planogram,
    Product,
    SaleLine,
    ShelfChange,
    ShelfReading,
)
from protocols.cabinet.strays import Stray, StrayBook
from protocols.money import Money

SCHEMA = """
CREATE TABLE IF NOT EXISTS cabinet_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL,
    at         TEXT    NOT NULL,
    body       TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS cabinet_log_session ON cabinet_log (session_id, seq);
"""
NEXT_ID_KEY = "cabinet.next_session"  # meta: the next session id to hand out
EVENT_ACK_KEY = "cabinet.event_ack"  # meta: "boot:seq" of the last cabinet event journaled
STRAYS_KEY = "cabinet.strays"  # meta: the items on a wrong shelf (open planogram notices)


class CabinetLogError(Exception):
    """A cabinet log row that cannot be read back (a broken journal)."""


# --- values <-> JSON ----------------------------------------------------------------------


def money_json(m: Money) -> dict[str, Any]:
    return {"minor": m.minor, "currency": m.currency}


def money_of(d: Mapping[str, Any]) -> Money:
    return Money(int(d["minor"]), str(d["currency"]))


def reading_json(r: ShelfReading) -> dict[str, Any]:
    tags = None if r.tags is None else sorted(r.tags)
    return {"shelf": r.shelf, "weight_g": r.weight_g, "tags": tags, "fault": r.fault}


def reading_of(d: Mapping[str, Any]) -> ShelfReading:
    tags = d.get("tags")
    return ShelfReading(
        int(d["shelf"]),
        None if d.get("weight_g") is None else int(d["weight_g"]),
        None if tags is None else frozenset(str(t) for t in tags),
        bool(d.get("fault", False)),
    )


def change_json(c: ShelfChange) -> dict[str, Any]:
    return {
        "shelf": c.shelf,
        "before": c.weight_before_g,
        "after": c.weight_after_g,
        "removed": sorted(c.removed_tags),
        "added": sorted(c.added_tags),
        "rfid": c.rfid,
        "confidence": c.confidence,
        "fault": c.fault,
    }


def change_of(d: Mapping[str, Any]) -> ShelfChange:
    def grams(key: str) -> int | None:
        return None if d.get(key) is None else int(d[key])

    return ShelfChange(
        int(d["shelf"]),
        grams("before"),
        grams("after"),
        frozenset(str(t) for t in d.get("removed", ())),
        frozenset(str(t) for t in d.get("added", ())),
        bool(d.get("rfid", False)),
        int(d.get("confidence", 100)),
        bool(d.get("fault", False)),
    )


def strays_json(book: StrayBook) -> str:
    strays = [
        {"session_id": s.session_id, "shelf": s.shelf, "sku": s.sku, "quantity": s.quantity,
         "unit_weight_g": s.unit_weight_g, "tolerance_g": s.tolerance_g, "tags": sorted(s.tags)}
        for s in book.strays
    ]  # fmt: skip
    weights = {str(shelf): grams for shelf, grams in sorted(book.weights.items())}
    return json.dumps({"strays": strays, "weights": weights}, sort_keys=True)


def strays_of(raw: str | None) -> StrayBook:
    """The book kept in the journal's meta (empty when none was ever written)."""
    if not raw:
        return StrayBook()
    try:
        d = json.loads(raw)
        strays = tuple(
            Stray(
                int(s["session_id"]), int(s["shelf"]), str(s["sku"]), int(s["quantity"]),
                int(s["unit_weight_g"]), int(s["tolerance_g"]),
                frozenset(str(t) for t in s.get("tags", ())),
            )
            for s in d["strays"]
        )  # fmt: skip
        weights = {int(k): int(v) for k, v in d["weights"].items()}
    except (ValueError, TypeError, KeyError, AttributeError, CabinetError) as exc:
        raise CabinetLogError(f"unreadable {STRAYS_KEY} in the journal: {exc}") from exc
    return StrayBook(strays, weights)


def lines_json(lines: Sequence[SaleLine]) -> list[dict[str, Any]]:
    """The items of a settlement (not its cap adjustment), for the ``closed`` row."""
    return [
        {"sku": ln.sku, "name": ln.name, "quantity": ln.quantity, "unit_price": ln.unit_price.minor}
        for ln in lines
        if ln.kind is LineKind.ITEM
    ]


def planogram_json(p: Planogram) -> dict[str, Any]:
    return {
        "shelves": [
            {
                "shelf": shelf,
                "sku": prod.sku,
                "name": prod.name,
                "price": money_json(prod.unit_price),
                "unit_weight_g": prod.unit_weight_g,
                "tolerance_g": prod.tolerance_g,
            }
            for shelf, prod in sorted(p.shelves.items())
        ],
        "tags": dict(sorted(p.tags.items())),
    }


def planogram_of(d: Mapping[str, Any]) -> Planogram:
    shelves = {
        int(s["shelf"]): Product(
            str(s["sku"]),
            str(s["name"]),
            money_of(s["price"]),
            int(s["unit_weight_g"]),
            int(s["tolerance_g"]),
        )
        for s in d["shelves"]
    }
    return Planogram(shelves, {str(k): str(v) for k, v in d.get("tags", {}).items()})


def policy_json(p: CabinetPolicy) -> dict[str, Any]:
    return {
        "pre_auth": money_json(p.pre_auth),
        "disagreement_rule": p.disagreement_rule.value,
        "held_open_rule": p.held_open_rule.value,
        "power_loss_rule": p.power_loss_rule.value,
        "open_window_s": p.open_window_s,
        "held_open_limit_s": p.held_open_limit_s,
        "min_confidence": p.min_confidence,
        "noise_g": p.noise_g,
    }


def policy_of(d: Mapping[str, Any]) -> CabinetPolicy:
    return CabinetPolicy(
        pre_auth=money_of(d["pre_auth"]),
        disagreement_rule=ChargeRule(d["disagreement_rule"]),
        held_open_rule=ChargeRule(d["held_open_rule"]),
        power_loss_rule=ChargeRule(d["power_loss_rule"]),
        open_window_s=int(d["open_window_s"]),
        held_open_limit_s=int(d["held_open_limit_s"]),
        min_confidence=int(d["min_confidence"]),
        noise_g=int(d["noise_g"]),
    )


_PLAIN: dict[str, Callable[[], cs.SessionEvent]] = {
    "PaymentDenied": cs.PaymentDenied,
    "DoorUnlocked": cs.DoorUnlocked,
    "DoorOpened": cs.DoorOpened,
    "DoorClosed": cs.DoorClosed,
    "DoorHeldOpen": cs.DoorHeldOpen,
    "DoorRelocked": cs.DoorRelocked,
    "TamperDetected": cs.TamperDetected,
    "PowerLost": cs.PowerLost,
    "TimePassed": cs.TimePassed,
}


def event_json(event: cs.SessionEvent) -> dict[str, Any]:
    name = type(event).__name__
    match event:
        case cs.PaymentApproved(amount=amount):
            return {"type": name, "amount": None if amount is None else money_json(amount)}
        case cs.UnlockRefused(reason=reason):
            return {"type": name, "reason": reason}
        case cs.SensorFaulted(shelf=shelf):
            return {"type": name, "shelf": shelf}
        case cs.SessionReported(changes=changes):
            return {"type": name, "changes": [change_json(c) for c in changes]}
        case cs.PowerRestored(door_open=door_open):
            return {"type": name, "door_open": door_open}
        case cs.InventoryRead(readings=readings):
            return {"type": name, "readings": [reading_json(r) for r in readings]}
    return {"type": name}


def event_of(d: Mapping[str, Any]) -> cs.SessionEvent:
    name = d.get("type")
    if name in _PLAIN:
        return _PLAIN[str(name)]()
    match name:
        case "PaymentApproved":
            amount = d.get("amount")
            return cs.PaymentApproved(None if amount is None else money_of(amount))
        case "UnlockRefused":
            return cs.UnlockRefused(str(d.get("reason", "")))
        case "SensorFaulted":
            return cs.SensorFaulted(int(d["shelf"]))
        case "SessionReported":
            return cs.SessionReported(tuple(change_of(c) for c in d["changes"]))
        case "PowerRestored":
            return cs.PowerRestored(bool(d.get("door_open", False)))
        case "InventoryRead":
            return cs.InventoryRead(tuple(reading_of(r) for r in d["readings"]))
    raise CabinetLogError(f"unknown cabinet event {name!r}")


# --- one session as the log holds it -------------------------------------------------------


@dataclass(slots=True)
class LoggedSession:
    """A session read back from the log: enough to rebuild and finish it."""

    session_id: int
    reader: int
    boot: int | None
    baseline: tuple[ShelfReading, ...]
    planogram: Planogram
    policy: CabinetPolicy
    events: list[tuple[cs.SessionEvent, float]] = field(default_factory=list)
    payment_steps: list[dict[str, Any]] = field(default_factory=list)
    closed: dict[str, Any] | None = None
    media_id: int | None = None  # the card's payment media id (Level-3 BEGIN SESSION)

    def rebuild(self) -> cs.CabinetSession:
        """The pure session, replayed to where the log left it."""
        session = cs.CabinetSession(
            self.session_id, self.planogram, self.policy, baseline=self.baseline
        )
        started = self.events[0][1] if self.events else 0.0
        session.start(started)
        for event, now in self.events:
            session.handle(event, now)
        return session


def started_record(
    reader: int,
    boot: int | None,
    *,
    baseline: Sequence[ShelfReading],
    planogram: Planogram,
    policy: CabinetPolicy,
    media_id: int | None = None,
) -> dict[str, Any]:
    return {
        "kind": "started",
        "reader": reader,
        "media_id": media_id,
        "boot": boot,
        "baseline": [reading_json(r) for r in baseline],
        "planogram": planogram_json(planogram),
        "policy": policy_json(policy),
    }


def event_record(event: cs.SessionEvent, now: float) -> dict[str, Any]:
    return {"kind": "event", "event": event_json(event), "now": now}


def ensure_table(db: sqlite3.Connection) -> None:
    db.executescript(SCHEMA)


def insert(db: sqlite3.Connection, session_id: int, at: str, record: Mapping[str, Any]) -> None:
    db.execute(
        "INSERT INTO cabinet_log(session_id, at, body) VALUES (?, ?, ?)",
        (session_id, at, json.dumps(record, ensure_ascii=False, sort_keys=True)),
    )


def load_sessions(db: sqlite3.Connection, *, open_only: bool = True) -> list[LoggedSession]:
    """Every session in the log (oldest first), or only those not closed yet."""
    ensure_table(db)
    found: dict[int, LoggedSession] = {}
    rows = db.execute("SELECT session_id, body FROM cabinet_log ORDER BY seq").fetchall()
    for session_id, body in rows:
        record = json.loads(body)
        sid = int(session_id)
        kind = record.get("kind")
        if kind == "started":
            found[sid] = LoggedSession(
                sid,
                int(record["reader"]),
                None if record.get("boot") is None else int(record["boot"]),
                tuple(reading_of(r) for r in record["baseline"]),
                planogram_of(record["planogram"]),
                policy_of(record["policy"]),
                media_id=None if record.get("media_id") is None else int(record["media_id"]),
            )
            continue
        logged = found.get(sid)
        if logged is None:
            raise CabinetLogError(f"cabinet log: session {sid} has a {kind} row before it started")
        if kind == "event":
            logged.events.append((event_of(record["event"]), float(record["now"])))
        elif kind == "payment":
            logged.payment_steps.append(record)
        elif kind == "closed":
            logged.closed = record
        else:
            raise CabinetLogError(f"cabinet log: unknown row kind {kind!r}")
    sessions = list(found.values())
    return [s for s in sessions if s.closed is None] if open_only else sessions
