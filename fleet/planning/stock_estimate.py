"""What is in each selection now: the last known level, plus fills, minus sales since.

Sales come from live telemetry where the machine has it, otherwise from DEX counter
deltas between consecutive reads, with the counter rules of EVA-DTS practice: a board
swap or a counter that went backwards starts a new baseline (never negative sales),
a jump beyond what a machine can sell is a new baseline too, and empty or sentinel
fields are unknown rather than zero.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from fleet.planning.model import (
    DexReading,
    PlanogramSlot,
    SaleRecord,
    StockAdjustment,
    StockObservation,
)

# 2^32-1 and neighbours are "not available" markers in some makers' PA rows.
SENTINEL_FLOOR = 4_294_967_000
# A per-selection jump larger than this between two reads is a counter fault, not sales.
MAX_PLAUSIBLE_VENDS = 10_000


@dataclass(frozen=True, slots=True)
class DexInterval:
    """Vends of one selection between two DEX reads; `quantity` None means unknown."""

    machine_id: str
    selection: str
    start: datetime
    end: datetime
    quantity: int | None
    note: str = ""


def _usable(counter: int | None) -> bool:
    return counter is not None and 0 <= counter < SENTINEL_FLOOR


def dex_intervals(reads: Iterable[DexReading]) -> list[DexInterval]:
    """Per-selection sales between consecutive reads of each machine (sorted by time)."""
    by_machine: dict[str, list[DexReading]] = {}
    for read in reads:
        by_machine.setdefault(read.machine_id, []).append(read)
    out: list[DexInterval] = []
    for machine_id, machine_reads in by_machine.items():
        ordered = sorted(machine_reads, key=lambda r: r.at)
        for prev, cur in itertools.pairwise(ordered):
            for selection, now in cur.vends.items():
                before = prev.vends.get(selection)
                qty, note = _delta(prev, cur, before, now)
                out.append(DexInterval(machine_id, selection, prev.at, cur.at, qty, note))
    return out


def _delta(
    prev: DexReading, cur: DexReading, before: int | None, now: int | None
) -> tuple[int | None, str]:
    if prev.board_id != cur.board_id:
        return None, f"board changed {prev.board_id!r} -> {cur.board_id!r}: new baseline"
    if not _usable(now):
        return None, "counter empty or sentinel: unknown"
    if not _usable(before):
        return None, "no usable previous counter: new baseline"
    assert now is not None
    assert before is not None
    diff = now - before
    if diff < 0:
        return None, f"counter went back {before} -> {now} (reset): new baseline"
    if diff > MAX_PLAUSIBLE_VENDS:
        return None, f"counter jumped by {diff}: implausible, new baseline"
    return diff, ""


@dataclass(frozen=True, slots=True)
class StockEstimate:
    """Estimated units in a selection as of `as_of` (None when nothing is known)."""

    machine_id: str
    selection: str
    level: int | None
    as_of: datetime
    basis: str
    sold_since: int = 0
    uncertain: bool = False  # part of the interval is unknown (DEX gap, reset)


def _key(machine_id: str, selection: str) -> tuple[str, str]:
    return machine_id, selection


def estimate_stock(
    slot: PlanogramSlot,
    at: datetime,
    observations: Sequence[StockObservation],
    *,
    adjustments: Sequence[StockAdjustment] = (),
    sales: Sequence[SaleRecord] = (),
    dex: Sequence[DexInterval] = (),
    telemetry: bool = True,
) -> StockEstimate:
    """Stock of one slot at `at`, or as of the last data before it for DEX-only machines.

    Only records of this slot are used, so callers may pass whole-fleet lists.
    """
    key = _key(slot.machine_id, slot.selection)
    known = [o for o in observations if _key(o.machine_id, o.selection) == key and o.at <= at]
    if not known:
        return StockEstimate(slot.machine_id, slot.selection, None, at, "no stock data")
    last = max(known, key=lambda o: o.at)
    level = last.level
    for adj in adjustments:
        if _key(adj.machine_id, adj.selection) == key and last.at < adj.at <= at:
            level += adj.delta
    sold = 0
    uncertain = False
    as_of = at
    if telemetry:
        sold = sum(
            s.quantity
            for s in sales
            if _key(s.machine_id, s.selection) == key and last.at < s.at <= at
        )
        basis = f"level {last.level} at {last.at:%Y-%m-%d %H:%M} ({last.source}) - live sales"
    else:
        sold, uncertain, covered = _dex_sold(key, last.at, at, dex)
        as_of = covered
        basis = f"level {last.level} at {last.at:%Y-%m-%d %H:%M} ({last.source}) - DEX deltas"
    level = max(0, min(slot.capacity, level - sold))
    return StockEstimate(slot.machine_id, slot.selection, level, as_of, basis, sold, uncertain)


def _dex_sold(
    key: tuple[str, str], since: datetime, until: datetime, dex: Sequence[DexInterval]
) -> tuple[int, bool, datetime]:
    """Sales after `since` from DEX intervals, prorated where an interval straddles it."""
    sold = 0.0
    uncertain = False
    covered = since
    for iv in dex:
        if _key(iv.machine_id, iv.selection) != key or iv.end <= since or iv.start >= until:
            continue
        covered = max(covered, min(iv.end, until))
        if iv.quantity is None:
            uncertain = True
            continue
        span = (iv.end - iv.start).total_seconds()
        inside = (min(iv.end, until) - max(iv.start, since)).total_seconds()
        sold += iv.quantity * (inside / span if span > 0 else 1.0)
    return round(sold), uncertain, covered


@dataclass(frozen=True, slots=True)
class Interval:
    start: datetime
    end: datetime


def stockout_intervals(
    slot: PlanogramSlot,
    observations: Sequence[StockObservation],
    adjustments: Sequence[StockAdjustment],
    sales: Sequence[SaleRecord],
    until: datetime,
) -> list[Interval]:
    """When the slot stood empty, replayed from observations, fills and live sales.

    Empty runs from the sale that took the last unit (or an observation of zero) until
    the next observation or fill that put stock back, or `until`.
    """
    key = _key(slot.machine_id, slot.selection)
    events: list[tuple[datetime, int, int]] = []  # (time, order, value)
    events += [(o.at, 0, o.level) for o in observations if _key(o.machine_id, o.selection) == key]
    events += [(a.at, 1, a.delta) for a in adjustments if _key(a.machine_id, a.selection) == key]
    events += [(s.at, 2, -s.quantity) for s in sales if _key(s.machine_id, s.selection) == key]
    events.sort(key=lambda e: (e[0], e[1]))
    out: list[Interval] = []
    level: int | None = None
    empty_since: datetime | None = None
    for at, kind, value in events:
        if at > until:
            break
        if kind == 0:
            level = value
        elif level is not None:
            level = max(0, level + value)
        if level is None:
            continue
        if level == 0 and empty_since is None:
            empty_since = at
        elif level > 0 and empty_since is not None:
            out.append(Interval(empty_since, at))
            empty_since = None
    if empty_since is not None and empty_since < until:
        out.append(Interval(empty_since, until))
    return out


def spread_dex_sales(intervals: Sequence[DexInterval], tz: tzinfo) -> list[SaleRecord]:
    """DEX intervals as daily sale records (local noon), so DEX-only machines can be
    forecast like the others. The rate is right; the weekday shape inside one interval
    is flat because DEX cannot say which day a vend happened."""
    out: list[SaleRecord] = []
    for iv in intervals:
        if not iv.quantity:
            continue
        first = iv.start.astimezone(tz).date()
        last = iv.end.astimezone(tz).date()
        days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
        noons = [datetime.combine(d, time(12), tzinfo=tz) for d in days]
        noons = [n for n in noons if iv.start <= n < iv.end] or [iv.start + (iv.end - iv.start) / 2]
        share, extra = divmod(iv.quantity, len(noons))
        for k, noon in enumerate(noons):
            qty = share + (1 if k < extra else 0)
            if qty:
                out.append(SaleRecord(iv.machine_id, iv.selection, noon, qty))
    return out
