"""Product sold per inventory movement (pure): does the stock the machine reports move by
what it sold and what the driver put in or took out?

For each selection, between the count the machine reported before (or at the start of)
an interval and its last count inside it::

    expected = first count - units sold (every vend, test vends too) + filled - removed
    residual = last count - expected

Sales, stock messages and service visits share the machine's event sequence, so "between"
is exact (by ``seq``, not by clock). A residual is product that appeared or disappeared
with no sale and no visit entry for it: ``inventory_mismatch``, valued at the selection's
price, negative when product is missing (over = positive). A window that spans a known
telemetry gap is not checked: the lost events may be the sales.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from fleet.audit.records import SaleRecord, StockEvent, TelemetryGap

Finding = Callable[[int, StockEvent, str], None]  # (amount, last count, detail)


def sale_seq(sale: SaleRecord) -> int:
    return int(sale.key.rpartition(":")[2])


def check_inventory(
    stock: Sequence[StockEvent],
    sales: Sequence[SaleRecord],
    gaps: Sequence[TelemetryGap],
    owns: Callable[[StockEvent], bool],
    add: Finding,
) -> None:
    """``stock``: the interval's stock events and the counts before it; ``sales``: the
    machine's sales over the same span; ``owns``: whether a count closes a window here."""
    by_selection: dict[str, list[StockEvent]] = defaultdict(list)
    for event in sorted(stock, key=lambda e: (e.seq, e.kind)):
        by_selection[event.selection].append(event)
    sold: dict[str, list[int]] = defaultdict(list)
    for sale in sales:
        sold[sale.selection].append(sale_seq(sale))
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
        units_sold = sum(1 for seq in sold.get(selection, ()) if lo < seq <= hi)
        moved = sum(
            e.units if e.kind == "fill" else -e.units
            for e in events
            if e.kind in {"fill", "remove"} and lo < e.seq <= hi
        )
        expected = first.units - units_sold + moved
        residual = last.units - expected
        if residual:
            add(
                residual * last.price,
                last,
                f"selection {selection}: counted {last.units}, expected {expected} "
                f"({first.units} at seq {lo}, {units_sold} sold, {moved:+} filled/removed)",
            )
