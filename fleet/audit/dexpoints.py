"""A DEX read as the cumulative counters reconciliation needs (pure).

Only since-initialisation fields are used: their difference between two reads is the
interval's figure whatever resets happened in between (reference: vending-operations
3.6). A control board serial that changes, or a cumulative counter that goes back, is a
break: the later read starts a new baseline and no negative sales are booked.
"""

from __future__ import annotations

from datetime import datetime

from fleet.audit.records import DexPoint, SelectionCounters
from protocols.dex import DexError, parse_dex
from protocols.dex.dexfile import DexFile

# Cumulative counters beyond this are "not available" sentinels, not counts (2^32 - 1).
_SENTINEL = 4_294_967_295


def _clean(value: int | None) -> int | None:
    return None if value is None or value >= _SENTINEL or value < 0 else value


def dex_point(read_id: str, machine: str, read_at: datetime, raw: str) -> DexPoint:
    """Parse ``raw`` (tolerant reader); raises DexError only when nothing is readable."""
    dex = parse_dex(raw)
    return point_from(read_id, machine, read_at, dex)


def point_from(read_id: str, machine: str, read_at: datetime, dex: DexFile) -> DexPoint:
    paid = dex.paid_vends
    test = dex.test_vends
    free = dex.free_vends
    cash = dex.cash_sales
    cash_in = dex.cash_in
    cash_out = dex.cash_out
    cashless_values = [d.sales.value_init for d in dex.cashless]
    cashless = (
        None
        if not cashless_values or any(_clean(v) is None for v in cashless_values)
        else sum(v for v in cashless_values if v is not None)
    )
    board = dex.control_board
    return DexPoint(
        read_id=read_id,
        machine=machine,
        read_at=read_at,
        board=board.serial if board is not None else "",
        paid_value=_clean(paid.value_init) if paid else None,
        paid_count=_clean(paid.count_init) if paid else None,
        cash_value=_clean(cash.value_init) if cash else None,
        cashless_value=cashless if dex.cashless else 0,
        test_count=_clean(test.count_init) if test else None,
        free_count=_clean(free.count_init) if free else None,
        cashbox_coins=_clean(cash_in.cashbox_init) if cash_in else None,
        bills_in=_clean(cash_in.bills_init) if cash_in else None,
        manual_payout=_clean(cash_out.manual_init) if cash_out else None,
        selections=tuple(
            SelectionCounters(
                code=s.selection,
                price=_clean(s.price),
                paid_count=_clean(s.paid.count_init),
                paid_value=_clean(s.paid.value_init),
                test_count=_clean(s.test.count_init) if s.test else None,
                free_count=_clean(s.free.count_init) if s.free else None,
            )
            for s in dex.selections
        ),
    )


def delta(before: int | None, after: int | None) -> int | None:
    if before is None or after is None:
        return None
    return after - before


def counters_broken(start: DexPoint, end: DexPoint) -> bool:
    """True when ``end`` cannot be compared with ``start``: another control board, or a
    cumulative counter lower than before (initialisation, reset of the odometers)."""
    if start.board and end.board and start.board != end.board:
        return True
    pairs = (
        (start.paid_value, end.paid_value),
        (start.paid_count, end.paid_count),
        (start.cash_value, end.cash_value),
        (start.cashless_value, end.cashless_value),
        (start.cashbox_coins, end.cashbox_coins),
        (start.bills_in, end.bills_in),
    )
    return any(d is not None and d < 0 for d in (delta(a, b) for a, b in pairs))


__all__ = ["DexError", "counters_broken", "delta", "dex_point", "point_from"]
