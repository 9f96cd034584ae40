"""Reconcile one machine-interval (pure): line items and discrepancies.

Checks, each with its own evidence so that one cause gives one discrepancy:

* fiscal: every paid sale has exactly one transmitted receipt of the right amount and VAT;
  every receipt has a sale; a refunded sale has an adjustment receipt;
* cashless: every cashless sale has exactly one settlement row of the right amount, and
  every settlement row has a sale;
* machine counters: DEX cash and cashless deltas over the read-to-read window against the
  telemetry of that window (a break in the counters is its own finding; a shortfall
  while telemetry has a known gap means sales nobody receipted);
* cash: the counted bag against the cash the counters say went into the box;
* product given away: test and free vends, valued at the selection price;
* inventory: stock counts against units sold, filled and removed (:mod:`.inventory`).

A document that belongs to a sale on the other side of the period boundary is "timing",
one finding per sale, and reverses in the neighbouring period.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from fleet.audit.dexpoints import counters_broken, delta
from fleet.audit.inventory import check_inventory
from fleet.audit.links import Links
from fleet.audit.records import (
    CashCount,
    DexPoint,
    ReceiptKind,
    ReceiptRecord,
    ReconcileConfig,
    SaleMethod,
    SaleRecord,
    SettlementKind,
    SettlementRecord,
    Site,
    StockEvent,
    TelemetryGap,
    TubePayout,
    vat_due,
)
from fleet.audit.report import BoundaryKind, Category, Discrepancy, IntervalResult, Totals


@dataclass(frozen=True, slots=True)
class IntervalInput:
    """One machine-interval [start, end) and the evidence it needs.

    ``sales``: telemetry sales in the interval. ``receipts`` / ``settlements``: documents
    assigned to it (those of its sales wherever they fall in time, plus documents dated in
    it whose sale is elsewhere or unknown). ``related_sales``: sales outside the interval
    its documents point at. ``context_receipts``: receipts of refunded sales and any
    adjustments of them. ``dex_sales``: telemetry between the two boundary DEX reads.
    ``cash_*``: the collection-to-collection window of ``count``. ``stock*``: see
    :mod:`fleet.audit.inventory`.
    """

    machine: str
    index: int
    start: datetime
    end: datetime
    start_kind: BoundaryKind
    end_kind: BoundaryKind
    period_start: datetime
    period_end: datetime
    month: str
    config: ReconcileConfig = field(default_factory=ReconcileConfig)
    site: Site = field(default_factory=Site)
    sales: tuple[SaleRecord, ...] = ()
    receipts: tuple[ReceiptRecord, ...] = ()
    settlements: tuple[SettlementRecord, ...] = ()
    related_sales: tuple[SaleRecord, ...] = ()
    context_receipts: tuple[ReceiptRecord, ...] = ()
    dex_start: DexPoint | None = None
    dex_end: DexPoint | None = None
    dex_sales: tuple[SaleRecord, ...] = ()
    gaps: tuple[TelemetryGap, ...] = ()
    count: CashCount | None = None
    cash_start: datetime | None = None
    cash_dex_start: DexPoint | None = None
    cash_dex_end: DexPoint | None = None
    cash_sales: tuple[SaleRecord, ...] = ()
    cash_tube_payouts: tuple[TubePayout, ...] = ()
    stock: tuple[StockEvent, ...] = ()  # stock events in the interval + counts before it
    stock_sales: tuple[SaleRecord, ...] = ()  # sales over the span of ``stock``
    stock_gaps: tuple[TelemetryGap, ...] = ()

    def in_period(self, moment: datetime) -> bool:
        return self.period_start <= moment < self.period_end


class _Findings:
    def __init__(self, item: IntervalInput) -> None:
        self.item = item
        self.found: list[Discrepancy] = []
        self.timing: dict[str, tuple[int, datetime, list[str]]] = {}

    def add(self, category: Category, amount: int, at: datetime, ref: str, detail: str) -> None:
        self.found.append(
            Discrepancy(self.item.machine, self.item.index, category, amount, at, ref, detail)
        )

    def straddle(self, sale: SaleRecord, amount: int, what: str) -> None:
        # One timing finding per sale, however many of its documents cross the boundary.
        _, _, whats = self.timing.setdefault(sale.key, (amount, sale.at, []))
        whats.append(what)

    def result(self) -> list[Discrepancy]:
        item = self.item
        for key, (amount, at, whats) in sorted(self.timing.items()):
            if at < item.period_start:
                side = f"sale {key} was before the period start"
            elif at >= item.period_end:
                side = f"sale {key} was after the period end"
            else:
                side = f"dated outside the period of sale {key}"
            self.add(Category.TIMING, amount, at, key, f"{', '.join(whats)}: {side}")
        return sorted(self.found, key=lambda d: (d.at, d.category.value, d.ref))


def reconcile_interval(item: IntervalInput) -> IntervalResult:
    findings = _Findings(item)
    links = Links(
        (*item.sales, *item.related_sales),
        (*item.receipts, *item.context_receipts),
        item.settlements,
    )
    _fiscal(item, links, findings)
    _cashless(item, links, findings)
    dex_totals = _counters(item, findings)
    cash_totals, cash_source = _cash(item, findings)
    if item.stock:
        _inventory(item, findings)
    discrepancies = tuple(findings.result())
    totals = _totals(item, dex_totals, cash_totals, discrepancies)
    dex_ok = item.dex_start is not None and item.dex_end is not None
    return IntervalResult(
        machine=item.machine,
        index=item.index,
        location=item.site.location,
        route=item.site.route,
        start=item.start,
        end=item.end,
        start_kind=item.start_kind,
        end_kind=item.end_kind,
        dex_reads=(item.dex_start.read_id, item.dex_end.read_id)  # type: ignore[union-attr]
        if dex_ok
        else None,
        dex_window=(item.dex_start.read_at, item.dex_end.read_at)  # type: ignore[union-attr]
        if dex_ok
        else None,
        cash_visit=item.count.visit if item.count else None,
        cash_window=(item.cash_start, item.count.at)
        if item.count is not None and item.cash_start is not None
        else None,
        expected_cash_source=cash_source,
        totals=totals,
        discrepancies=discrepancies,
        month=item.month,
    )


# -- fiscal ---------------------------------------------------------------------------


def _fiscal(item: IntervalInput, links: Links, out: _Findings) -> None:
    own_sales = {s.key for s in item.sales}
    by_sale: dict[str, list[ReceiptRecord]] = defaultdict(list)
    for r in item.receipts:
        if r.kind is not ReceiptKind.SALE or not r.transmitted:
            continue  # adjustments are checked against refunds; unsent ones were not issued
        sale = links.sale_of_receipt(r)
        if sale is None:
            if item.in_period(r.at):
                out.add(Category.RECEIPT_WITHOUT_SALE, r.amount, r.at, r.key, "no such sale")
        elif not sale.paid:
            out.add(Category.RECEIPT_WITHOUT_SALE, r.amount, r.at, r.key, "sale was a test vend")
        elif sale.key in own_sales:
            by_sale[sale.key].append(r)
        elif item.in_period(r.at):
            out.straddle(sale, r.amount, f"receipt {r.number}")
    unsent = {
        links.receipt_sale[r.key]
        for r in item.receipts
        if not r.transmitted and r.kind is ReceiptKind.SALE and r.key in links.receipt_sale
    }
    for sale in item.sales:
        if not sale.paid:
            continue
        issued = sorted(by_sale.get(sale.key, ()), key=lambda r: (r.at, r.key))
        inside = [r for r in issued if item.in_period(r.at)]
        if not issued:
            why = "receipt never transmitted" if sale.key in unsent else "no receipt issued"
            out.add(Category.MISSING_RECEIPT, -sale.price, sale.at, sale.key, why)
            continue
        if not inside:
            out.straddle(sale, -sale.price, f"receipt {issued[0].number}")
            continue
        first, extras = inside[0], inside[1:]
        for extra in extras:
            out.add(
                Category.DUPLICATE,
                extra.amount,
                extra.at,
                extra.key,
                f"second receipt for {sale.key}",
            )
        if first.amount != sale.price:
            out.add(
                Category.AMOUNT_MISMATCH,
                first.amount - sale.price,
                first.at,
                first.key,
                f"receipt {first.amount} for a sale of {sale.price}",
            )
        due = vat_due(first.amount, item.config.vat_rate_bp)
        if first.vat != due:
            out.add(
                Category.VAT_MISMATCH,
                first.vat - due,
                first.at,
                first.key,
                f"VAT {first.vat}, due {due}",
            )


# -- cashless -------------------------------------------------------------------------


def _cashless(item: IntervalInput, links: Links, out: _Findings) -> None:
    own_sales = {s.key for s in item.sales}
    by_sale: dict[str, list[SettlementRecord]] = defaultdict(list)
    for row in item.settlements:
        sale = links.sale_of_settlement(row)
        if row.kind is not SettlementKind.SALE:
            _refund(item, links, row, sale, out)
        elif sale is None:
            if item.in_period(row.at):
                out.add(
                    Category.CASHLESS_UNMATCHED, row.amount, row.at, row.key, "settled, no sale"
                )
        elif sale.key in own_sales:
            by_sale[sale.key].append(row)
        elif item.in_period(row.at):
            out.straddle(sale, row.amount, f"settlement {row.reference or row.key}")
    for sale in item.sales:
        if sale.method is not SaleMethod.CASHLESS or not sale.paid:
            continue
        rows = sorted(by_sale.get(sale.key, ()), key=lambda r: (r.at, r.key))
        inside = [r for r in rows if item.in_period(r.at)]
        if not rows:
            out.add(
                Category.CASHLESS_UNMATCHED, -sale.price, sale.at, sale.key, "sold, not settled"
            )
            continue
        if not inside:
            out.straddle(sale, -sale.price, f"settlement {rows[0].reference or rows[0].key}")
            continue
        first, extras = inside[0], inside[1:]
        for extra in extras:
            out.add(
                Category.DUPLICATE, extra.amount, extra.at, extra.key, f"captured twice: {sale.key}"
            )
        if first.amount != sale.price:
            out.add(
                Category.AMOUNT_MISMATCH,
                first.amount - sale.price,
                first.at,
                first.key,
                f"settled {first.amount} for a sale of {sale.price}",
            )


def _refund(
    item: IntervalInput,
    links: Links,
    row: SettlementRecord,
    sale: SaleRecord | None,
    out: _Findings,
) -> None:
    if not item.in_period(row.at):
        return
    if sale is None:
        out.add(
            Category.CASHLESS_UNMATCHED,
            -row.amount,
            row.at,
            row.key,
            f"{row.kind} for no known sale",
        )
        return
    receipts = [
        r
        for r in (*item.receipts, *item.context_receipts)
        if r.transmitted and links.receipt_sale.get(r.key) == sale.key
    ]
    issued = [r for r in receipts if r.kind is ReceiptKind.SALE]
    adjusted = sum(r.amount for r in receipts if r.kind is not ReceiptKind.SALE)
    if issued and adjusted < row.amount:
        out.add(
            Category.REFUND_WITHOUT_ADJUSTMENT,
            row.amount - adjusted,
            row.at,
            row.key,
            f"{row.kind} of {row.amount} for {sale.key}, receipt {issued[0].number} not adjusted",
        )


# -- machine counters -----------------------------------------------------------------


def _paid(sales: tuple[SaleRecord, ...], method: SaleMethod) -> int:
    return sum(s.price for s in sales if s.method is method and s.paid)


def _counters(item: IntervalInput, out: _Findings) -> tuple[int, int, int]:
    """DEX paid, cash and cashless over the window (0, 0, 0 when there is no window)."""
    start, end = item.dex_start, item.dex_end
    if start is None or end is None:
        return 0, 0, 0
    tele_cash = _paid(item.dex_sales, SaleMethod.CASH)
    tele_cashless = _paid(item.dex_sales, SaleMethod.CASHLESS)
    if counters_broken(start, end):
        measured = end.paid_value or 0  # the new baseline starts at zero
        out.add(
            Category.COUNTER_BREAK,
            measured - tele_cash - tele_cashless,
            end.read_at,
            end.read_id,
            f"board {start.board or '?'} -> {end.board or '?'} or counters went back; "
            "new baseline, DEX cannot account for the sales before it",
        )
        _giveaways(item, None, out)
        return measured, end.cash_value or 0, end.cashless_value or 0
    dex_cash = delta(start.cash_value, end.cash_value)
    dex_cashless = delta(start.cashless_value, end.cashless_value)
    gaps = item.gaps
    for method, dex_value, tele in (
        ("cash", dex_cash, tele_cash),
        ("cashless", dex_cashless, tele_cashless),
    ):
        if dex_value is None or dex_value == tele:
            continue
        residual = dex_value - tele
        if residual > 0 and gaps:
            seqs = ", ".join(f"{g.first_seq}-{g.last_seq}" for g in gaps)
            out.add(
                Category.MISSING_RECEIPT,
                -residual,
                end.read_at,
                f"{end.read_id}:{method}",
                f"DEX counted {residual} more {method} sales than telemetry (lost seq {seqs}); "
                "those sales were never receipted",
            )
        else:
            out.add(
                Category.UNEXPLAINED,
                residual,
                end.read_at,
                f"{end.read_id}:{method}",
                f"DEX {method} {dex_value} vs telemetry {tele}",
            )
    _giveaways(item, (start, end), out)
    paid = delta(start.paid_value, end.paid_value)
    return paid or 0, dex_cash or 0, dex_cashless or 0


def _giveaways(
    item: IntervalInput, reads: tuple[DexPoint, DexPoint] | None, out: _Findings
) -> None:
    """Test and free vends: product out, no money; valued at the selection's price."""
    end = item.dex_end
    assert end is not None
    prices = {s.code: s.price or 0 for s in end.selections}
    units: dict[str, int] = defaultdict(int)
    if reads is not None:
        before = {s.code: s for s in reads[0].selections}
        for sel in end.selections:
            old = before.get(sel.code)
            for new_value, old_value in (
                (sel.test_count, old.test_count if old else 0),
                (sel.free_count, old.free_count if old else 0),
            ):
                units[sel.code] += delta(old_value, new_value) or 0
    else:
        for sale in item.dex_sales:
            if sale.method is SaleMethod.TEST:
                units[sale.selection] += 1
    count = sum(units.values())
    if count:
        value = sum(n * prices.get(code, 0) for code, n in units.items())
        what = ", ".join(f"{code}x{n}" for code, n in sorted(units.items()) if n)
        out.add(
            Category.TEST_FREE_VENDS,
            -value,
            end.read_at,
            f"{end.read_id}:test",
            f"{count} vends without payment: {what}",
        )


# -- inventory ------------------------------------------------------------------------


def _inventory(item: IntervalInput, out: _Findings) -> None:
    def owns(event: StockEvent) -> bool:
        return item.start <= event.at < item.end and item.in_period(event.at)

    def add(amount: int, last: StockEvent, detail: str) -> None:
        ref = f"stock:{last.seq}:{last.selection}"
        out.add(Category.INVENTORY_MISMATCH, amount, last.at, ref, detail)

    check_inventory(item.stock, item.stock_sales, item.stock_gaps, owns, add)


# -- cash -----------------------------------------------------------------------------


def _cash(item: IntervalInput, out: _Findings) -> tuple[tuple[int, int], str | None]:
    """(expected, over/short) and where the expectation came from."""
    count = item.count
    if count is None or item.cash_start is None:
        return (0, 0), None
    start, end = item.cash_dex_start, item.cash_dex_end
    expected: int | None = None
    source = "telemetry"
    if start is not None and end is not None and not counters_broken(start, end):
        parts = [
            delta(start.cashbox_coins, end.cashbox_coins),
            delta(start.bills_in, end.bills_in),
            delta(start.manual_payout, end.manual_payout),
        ]
        if parts[0] is not None and parts[1] is not None:
            expected = sum(p or 0 for p in parts)
            source = "dex"
    if expected is None:
        expected = sum(s.cash_to_box for s in item.cash_sales) + sum(
            p.amount for p in item.cash_tube_payouts
        )
    diff = count.accounted - expected
    if diff:
        out.add(
            Category.CASH_OVER_SHORT,
            diff,
            count.at,
            f"visit:{count.visit}",
            f"counted {count.counted} + change added {count.change_added} + refunds by hand "
            f"{count.refunds_by_hand} vs expected {expected} ({source})",
        )
    return (expected, diff), source


# -- totals ---------------------------------------------------------------------------


def _totals(
    item: IntervalInput,
    dex: tuple[int, int, int],
    cash: tuple[int, int],
    discrepancies: tuple[Discrepancy, ...],
) -> Totals:
    paid = [s for s in item.sales if s.paid]
    settled = [r for r in item.settlements if item.in_period(r.at)]
    receipts = [
        r
        for r in item.receipts
        if r.kind is ReceiptKind.SALE and r.transmitted and item.in_period(r.at)
    ]
    count = item.count
    return Totals(
        telemetry_count=len(paid),
        telemetry_value=sum(s.price for s in paid),
        telemetry_cash=_paid(item.sales, SaleMethod.CASH),
        telemetry_cashless=_paid(item.sales, SaleMethod.CASHLESS),
        test_free_vends=sum(1 for s in item.sales if s.method is SaleMethod.TEST),
        dex_paid=dex[0],
        dex_cash=dex[1],
        dex_cashless=dex[2],
        cash_expected=cash[0],
        cash_counted=count.counted if count else 0,
        cash_change_added=count.change_added if count else 0,
        cash_refunds_by_hand=count.refunds_by_hand if count else 0,
        cash_over_short=cash[1],
        settled_gross=sum(r.amount for r in settled if r.kind is SettlementKind.SALE),
        settled_fees=sum(r.fee for r in settled),
        settled_refunds=sum(r.amount for r in settled if r.kind is not SettlementKind.SALE),
        receipts_count=len(receipts),
        receipts_value=sum(r.amount for r in receipts),
        receipts_vat=sum(r.vat for r in receipts),
        discrepancies=len(discrepancies),
        discrepancy_net=sum(d.amount for d in discrepancies),
    )
