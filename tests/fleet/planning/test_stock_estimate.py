from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleet.planning.model import (
    DexReading,
    PlanogramSlot,
    SaleRecord,
    StockAdjustment,
    StockObservation,
)
from fleet.planning.stock_estimate import (
    dex_intervals,
    estimate_stock,
    spread_dex_sales,
    stockout_intervals,
)

T0 = datetime(2024, 3, 4, 8, tzinfo=UTC)
SLOT = PlanogramSlot("m1", "A1", "cola", capacity=10, par=8)


def read(hours: int, board: str, **vends: int | None) -> DexReading:
    return DexReading("m1", T0 + timedelta(hours=hours), board, dict(vends))


def test_dex_deltas_between_consecutive_reads() -> None:
    ivs = dex_intervals([read(48, "b1", A1=130), read(0, "b1", A1=100), read(24, "b1", A1=112)])
    assert [(iv.quantity, iv.start.hour + 24 * (iv.start - T0).days) for iv in ivs] == [
        (12, 8),
        (18, 32),
    ]


def test_counter_reset_starts_a_new_baseline_never_negative_sales() -> None:
    ivs = dex_intervals([read(0, "b1", A1=500), read(24, "b1", A1=3), read(48, "b1", A1=10)])
    assert ivs[0].quantity is None
    assert "reset" in ivs[0].note
    assert ivs[1].quantity == 7  # counted from the new baseline


def test_board_swap_and_sentinels_are_unknown_not_zero() -> None:
    ivs = dex_intervals(
        [
            read(0, "b1", A1=100, A2=50),
            read(24, "b2", A1=104, A2=55),  # new board: both unknown
            read(48, "b2", A1=110, A2=4294967295),  # sentinel on A2
            read(72, "b2", A1=None, A2=60),  # empty field on A1
        ]
    )
    got = {(iv.selection, (iv.end - T0).days): iv.quantity for iv in ivs}
    assert got == {
        ("A1", 1): None,
        ("A2", 1): None,
        ("A1", 2): 6,
        ("A2", 2): None,
        ("A1", 3): None,
        ("A2", 3): None,  # previous counter was a sentinel: no baseline yet
    }


def test_implausible_jump_is_a_new_baseline() -> None:
    ivs = dex_intervals([read(0, "b1", A1=10), read(24, "b1", A1=900_000)])
    assert ivs[0].quantity is None


def test_live_estimate_subtracts_sales_and_adds_fills_since_last_count() -> None:
    obs = [StockObservation("m1", "A1", T0, 6), StockObservation("m1", "A1", T0 - timedelta(1), 2)]
    sales = [SaleRecord("m1", "A1", T0 + timedelta(hours=h)) for h in (1, 2, 3)]
    sales += [SaleRecord("m1", "B1", T0 + timedelta(hours=1), 5)]  # another selection
    adj = [StockAdjustment("m1", "A1", T0 + timedelta(hours=4), 4)]
    est = estimate_stock(SLOT, T0 + timedelta(hours=5), obs, adjustments=adj, sales=sales)
    assert est.level == 6 + 4 - 3
    assert est.sold_since == 3


def test_estimate_never_goes_negative_or_above_capacity() -> None:
    obs = [StockObservation("m1", "A1", T0, 2)]
    sales = [SaleRecord("m1", "A1", T0 + timedelta(hours=1), 5)]
    assert estimate_stock(SLOT, T0 + timedelta(hours=2), obs, sales=sales).level == 0
    adj = [StockAdjustment("m1", "A1", T0 + timedelta(hours=1), 50)]
    assert estimate_stock(SLOT, T0 + timedelta(hours=2), obs, adjustments=adj).level == 10


def test_no_data_is_unknown() -> None:
    est = estimate_stock(SLOT, T0, [])
    assert est.level is None


def test_dex_only_estimate_uses_deltas_and_reports_coverage() -> None:
    obs = [StockObservation("m1", "A1", T0, 8)]
    ivs = dex_intervals([read(0, "b1", A1=100), read(24, "b1", A1=105)])
    est = estimate_stock(SLOT, T0 + timedelta(hours=40), obs, dex=ivs, telemetry=False)
    assert est.level == 3
    assert est.as_of == T0 + timedelta(hours=24)  # the forecast covers the rest


def test_stockout_intervals_from_replay() -> None:
    obs = [StockObservation("m1", "A1", T0, 2)]
    sales = [SaleRecord("m1", "A1", T0 + timedelta(hours=h)) for h in (1, 2)]
    refill = T0 + timedelta(days=3)
    adj = [StockAdjustment("m1", "A1", refill, 8)]
    outs = stockout_intervals(SLOT, obs, adj, sales, T0 + timedelta(days=5))
    assert [(o.start, o.end) for o in outs] == [(T0 + timedelta(hours=2), refill)]


def test_spread_dex_sales_keeps_the_total() -> None:
    ivs = dex_intervals([read(0, "b1", A1=0), read(24 * 4, "b1", A1=10)])
    records = spread_dex_sales(ivs, UTC)
    assert sum(r.quantity for r in records) == 10
    assert len({r.at.date() for r in records}) == 4
