"""Product sold per inventory movement (pure): does the stock the machine reports move by
what it sold and what the driver put in or took out?

For each selection, between the count the machine reported before (or at the start of)
an interval and its last count inside it::

    expected = first count - units vended (sales, basket lines, test vends)
               + filled - removed
    residual = last count - expected

Sales, stock messages and service visits share the machine's event sequence, so "between"
is exact (by ``seq``, not by clock). A residual is product that appeared or disappeared
with no sale and no visit entry for it: ``inventory_mismatch``, valued at the selection's
price, negative when product is missing (over = positive). A count the driver corrected
by hand is such a residual: the correction is the shrinkage found. A window that spans a
known telemetry gap is not checked: the lost events may be the sales.

Windows start and end only at counts taken while nothing was half done: the loader
(:mod:`.stock_source`) drops the counts taken with the service door open, and
:func:`settled` the counts of items a basket dispensed before its sale was reported.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

from fleet.audit.records import SaleMethod, SaleRecord, StockEvent, TelemetryGap

Finding = Callable[[int, StockEvent, str], None]  # (amount, last count, detail)
_MOVES = {"fill": 1, "remove": -1}


def sale_seq(sale: SaleRecord) -> int:
    return int(sale.key.rpartition(":")[2])


def settled(stock: Sequence[StockEvent], sales: Sequence[SaleRecord]) -> list[StockEvent]:
    """``stock`` without the counts caught in the middle of a basket.

    An automated store dispenses a basket item by item, each with a stock change (delta
    below zero), and reports the one sale when the basket settles; a count between its
    first item and its sale already lacks units no sale explains yet. The basket's items
    are the changes of its lines' selections after the machine's previous sale."""
    if not any(sale.lines for sale in sales):
        return list(stock)
    by_seq = sorted(stock, key=lambda e: e.seq)
    seqs = [e.seq for e in by_seq]
    sale_seqs = sorted(sale_seq(sale) for sale in sales)
    dropped: set[int] = set()
    for sale in sales:
        if not sale.lines:
            continue
        seq = sale_seq(sale)
        n = bisect.bisect_left(sale_seqs, seq)
        after = sale_seqs[n - 1] + 1 if n else -1  # the previous sale's own stock change
        codes = {code for code, _ in sale.lines}
        window = by_seq[bisect.bisect_right(seqs, after) : bisect.bisect_left(seqs, seq)]
        items = [
            e.seq
            for e in window
            if e.kind == "count" and e.selection in codes and e.delta is not None and e.delta < 0
        ]
        if items:
            dropped.update(e.seq for e in window if e.kind == "count" and e.seq >= items[0])
    return [e for e in stock if not (e.kind == "count" and e.seq in dropped)]


def check_inventory(
    stock: Sequence[StockEvent],
    sales: Sequence[SaleRecord],
    gaps: Sequence[TelemetryGap],
    owns: Callable[[StockEvent], bool],
    add: Finding,
) -> None:
    """``stock``: the interval's settled counts, the counts before it and the movements
    between; ``sales``: the machine's sales over the same span; ``owns``: whether a count
    closes a window here."""
    by_selection: dict[str, list[StockEvent]] = defaultdict(list)
    for event in sorted(stock, key=lambda e: (e.seq, e.kind)):
        by_selection[event.selection].append(event)
    vended: dict[str, list[tuple[int, int, bool]]] = defaultdict(list)  # (seq, units, test)
    for sale in sales:
        for code, units in sale.units:
            vended[code].append((sale_seq(sale), units, sale.method is SaleMethod.TEST))
    for selection, events in sorted(by_selection.items()):
        counts = [e for e in events if e.kind == "count"]
        closing = [e for e in counts if owns(e)]
        if not closing:
            continue
        last = closing[-1]
        # the last count before the interval, else the interval's first count
        baseline = [e for e in counts if not owns(e) and e.seq < last.seq]
        first = baseline[-1] if baseline else closing[0]
        if first is last:
            continue
        lo, hi = first.seq, last.seq
        if any(g.first_seq <= hi and g.last_seq > lo for g in gaps):
            continue
        out: Counter[bool] = Counter()
        for seq, units, test in vended.get(selection, ()):
            if lo < seq <= hi:
                out[test] += units
        between = [e for e in events if lo < e.seq <= hi]
        moved = sum(_MOVES.get(e.kind, 0) * e.units for e in between)
        corrected = sum(e.units for e in between if e.kind == "correct")
        expected = first.units - out[False] - out[True] + moved
        residual = last.units - expected
        if residual:
            add(
                residual * last.price,
                last,
                f"selection {selection}: counted {last.units}, expected {expected} "
                f"({first.units} at seq {lo}, {out[False]} sold, {out[True]} test vends, "
                f"{moved:+} filled/removed"
                + (f", {corrected:+} corrected by hand)" if corrected else ")"),
            )
