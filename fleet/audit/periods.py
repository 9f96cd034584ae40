"""Periods, machine-intervals and rollups (pure).

A period is [start, end) in UTC, usually a calendar month in the operator's time zone.
Each machine's period is cut into intervals at its cash collections and at month starts;
the first and last intervals meet the period boundaries, so a sale and its receipt on
either side of midnight at the period end are a "timing" difference, found in both
periods with opposite signs. Cash is checked where it was collected, over the whole
collection-to-collection window (which may begin in the previous period).
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fleet.audit.inventory import sale_seq, settled
from fleet.audit.links import Links
from fleet.audit.reconcile import IntervalInput, reconcile_interval
from fleet.audit.records import (
    AuditError,
    DexPoint,
    MachineActivity,
    ReceiptKind,
    ReceiptRecord,
    ReconcileConfig,
    SaleRecord,
    SettlementKind,
    SettlementRecord,
    StockEvent,
)
from fleet.audit.report import (
    GRAINS,
    BoundaryKind,
    IntervalResult,
    ReconciliationReport,
    Rollup,
    Totals,
)

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Period:
    label: str
    start: datetime
    end: datetime
    timezone: str

    def months(self) -> list[datetime]:
        """Month starts (local midnight, as UTC) strictly inside the period."""
        zone = _zone(self.timezone)
        local = self.start.astimezone(zone)
        found: list[datetime] = []
        year, month = local.year, local.month
        while True:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            moment = datetime.combine(date(year, month, 1), time(), zone).astimezone(UTC)
            if moment >= self.end:
                return found
            found.append(moment)

    def month_of(self, moment: datetime) -> str:
        return moment.astimezone(_zone(self.timezone)).strftime("%Y-%m")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AuditError(f"unknown time zone {name!r}") from None


def month_period(label: str, timezone: str) -> Period:
    """``YYYY-MM`` in ``timezone``."""
    match = _MONTH.match(label)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise AuditError(f"period {label!r}: expected YYYY-MM")
    year, month = int(match.group(1)), int(match.group(2))
    first = date(year, month, 1)
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return date_period(first, following - timedelta(days=1), timezone)


def date_period(first: date, last: date, timezone: str) -> Period:
    """From local midnight of ``first`` to local midnight after ``last`` (inclusive dates).
    A whole calendar month is labelled ``YYYY-MM``, anything else ``FIRST..LAST``."""
    if last < first:
        raise AuditError(f"period ends ({last}) before it starts ({first})")
    if (last - first).days > 366:
        raise AuditError("a reconciliation covers at most 366 days")
    zone = _zone(timezone)
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    whole_month = (
        first.day == 1
        and (last + timedelta(days=1)).day == 1
        and (
            first.year,
            first.month,
        )
        == (last.year, last.month)
    )
    label = first.strftime("%Y-%m") if whole_month else f"{first}..{last}"
    return Period(label, start, end, timezone)


# -- splitting a machine's period into intervals --------------------------------------


def _nearest_read(
    reads: Sequence[DexPoint], moment: datetime, tolerance: timedelta
) -> DexPoint | None:
    best = None
    for read in reads:
        gap = abs(read.read_at - moment)
        if gap <= tolerance and (best is None or gap <= abs(best.read_at - moment)):
            best = read
    return best


def _between(
    sales: Sequence[SaleRecord], times: Sequence[datetime], start: datetime, end: datetime
) -> tuple[SaleRecord, ...]:
    return tuple(sales[bisect.bisect_left(times, start) : bisect.bisect_left(times, end)])


def split_machine(
    activity: MachineActivity, period: Period, config: ReconcileConfig
) -> list[IntervalInput]:
    """The machine's intervals in ``period``, each with the evidence assigned to it."""
    counts = sorted(activity.counts, key=lambda c: c.at)
    closing = {c.at: c for c in counts if period.start < c.at <= period.end}
    all_count_times = {c.at for c in counts}
    bounds = sorted({period.start, period.end, *closing, *period.months()})
    sales = sorted(activity.sales, key=lambda s: (s.at, s.key))
    times = [s.at for s in sales]
    reads = sorted(activity.dex, key=lambda r: r.read_at)
    tol = config.read_tolerance
    ends = bounds[1:]

    def row_of(moment: datetime) -> int | None:
        if not period.start <= moment < period.end:
            return None
        return bisect.bisect_right(ends, moment)

    links = Links(sales, activity.receipts, activity.settlements)
    own_receipts: dict[int, list[ReceiptRecord]] = defaultdict(list)
    context: dict[int, list[ReceiptRecord]] = defaultdict(list)
    by_sale_receipts: dict[str, list[ReceiptRecord]] = defaultdict(list)
    for r in activity.receipts:
        sale = links.sale_of_receipt(r)
        if sale is not None:
            by_sale_receipts[sale.key].append(r)
        if r.kind is not ReceiptKind.SALE:
            continue
        row = row_of(sale.at) if sale is not None else None
        row = row if row is not None else row_of(r.at)
        if row is not None:
            own_receipts[row].append(r)
    own_settlements: dict[int, list[SettlementRecord]] = defaultdict(list)
    for s in activity.settlements:
        sale = links.sale_of_settlement(s)
        row = row_of(sale.at) if sale is not None and s.kind is SettlementKind.SALE else None
        row = row if row is not None else row_of(s.at)
        if row is None:
            continue
        own_settlements[row].append(s)
        if s.kind is not SettlementKind.SALE and sale is not None:
            context[row].extend(by_sale_receipts.get(sale.key, ()))

    previous_count = {c.at: prev.at for prev, c in itertools.pairwise(counts)}
    stock = settled(activity.stock, sales)
    result = []
    for index, (start, end) in enumerate(zip(bounds, ends, strict=False)):
        row_sales = _between(sales, times, start, end)
        own = {s.key for s in row_sales}
        related = {
            sale.key: sale
            for doc_sale in (
                *(links.sale_of_receipt(r) for r in own_receipts[index]),
                *(links.sale_of_settlement(s) for s in own_settlements[index]),
            )
            if (sale := doc_sale) is not None and sale.key not in own
        }
        dex_start, dex_end = _nearest_read(reads, start, tol), _nearest_read(reads, end, tol)
        if dex_start is not None and dex_end is not None and dex_start.read_at >= dex_end.read_at:
            dex_start = dex_end = None
        count = closing.get(end)
        cash_start = previous_count.get(end) if count is not None else None
        item = IntervalInput(
            machine=activity.machine,
            index=index,
            start=start,
            end=end,
            start_kind=BoundaryKind.COLLECTION if start in all_count_times else BoundaryKind.PERIOD,
            end_kind=BoundaryKind.COLLECTION if count is not None else BoundaryKind.PERIOD,
            period_start=period.start,
            period_end=period.end,
            month=period.month_of(start),
            config=config,
            site=activity.site,
            sales=row_sales,
            receipts=tuple(own_receipts[index]),
            settlements=tuple(own_settlements[index]),
            related_sales=tuple(related[k] for k in sorted(related)),
            context_receipts=tuple(
                {
                    r.key: r
                    for r in context[index] + _adjustments(activity.receipts, context[index])
                }.values()
            ),
            dex_start=dex_start,
            dex_end=dex_end,
            dex_sales=_between(sales, times, dex_start.read_at, dex_end.read_at)
            if dex_start and dex_end
            else (),
            gaps=tuple(
                g
                for g in activity.gaps
                if dex_start is not None
                and dex_end is not None
                and (g.after is None or g.after < dex_end.read_at)
                and (g.before is None or g.before > dex_start.read_at)
            ),
            count=count,
            cash_start=cash_start,
            cash_dex_start=_nearest_read(reads, cash_start, tol) if cash_start else None,
            cash_dex_end=_nearest_read(reads, end, tol) if count is not None else None,
            cash_sales=_between(sales, times, cash_start, end) if cash_start else (),
            cash_tube_payouts=tuple(
                p for p in activity.tube_payouts if cash_start and cash_start <= p.at < end
            ),
            **_stock_evidence(activity, stock, sales, start, end),
        )
        result.append(item)
    return result


def _stock_evidence(
    activity: MachineActivity,
    stock: Sequence[StockEvent],
    sales: Sequence[SaleRecord],
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    """The interval's stock counts, the last count of each selection before it, the
    movements and sales in between, by ``seq`` (nothing when the machine reported no stock
    in the interval). ``stock`` is the machine's settled history (see :func:`settled`)."""
    inside = [e for e in stock if e.kind == "count" and start <= e.at < end]
    if not inside:
        return {}
    before: dict[str, StockEvent] = {}
    for e in stock:
        if e.kind == "count" and e.at < start:
            held = before.get(e.selection)
            if held is None or held.seq < e.seq:
                before[e.selection] = e
    counts = (*before.values(), *inside)
    lo, hi = min(e.seq for e in counts), max(e.seq for e in counts)
    # Movements by sequence, not by clock: a visit's fills sit where its door opened.
    moves = [e for e in stock if e.kind != "count" and lo < e.seq <= hi]
    return {
        "stock": tuple(sorted((*counts, *moves), key=lambda e: (e.seq, e.selection, e.kind))),
        "stock_sales": tuple(s for s in sales if lo < sale_seq(s) <= hi),
        "stock_gaps": activity.gaps,
    }


def _adjustments(
    receipts: Iterable[ReceiptRecord], originals: Sequence[ReceiptRecord]
) -> list[ReceiptRecord]:
    numbers = {r.number for r in originals}
    return [r for r in receipts if r.kind is not ReceiptKind.SALE and r.original in numbers]


# -- the report -----------------------------------------------------------------------


def reconcile_period(
    activities: Iterable[MachineActivity], period: Period, config: ReconcileConfig
) -> ReconciliationReport:
    return build_report(reconcile_rows(activities, period, config), period, config)


def reconcile_rows(
    activities: Iterable[MachineActivity], period: Period, config: ReconcileConfig
) -> list[IntervalResult]:
    """The machine-interval rows of ``activities`` (one batch of machines or all)."""
    rows: list[IntervalResult] = []
    for activity in sorted(activities, key=lambda a: a.machine):
        rows.extend(reconcile_interval(item) for item in split_machine(activity, period, config))
    return rows


def build_report(
    rows: Iterable[IntervalResult], period: Period, config: ReconcileConfig
) -> ReconciliationReport:
    """The report of rows reconciled in any order of machines (sorted here)."""
    ordered = sorted(rows, key=lambda r: (r.machine, r.index))
    return ReconciliationReport(
        label=period.label,
        start=period.start,
        end=period.end,
        timezone=period.timezone,
        currency=config.currency,
        rows=tuple(ordered),
        rollups=rollups(ordered),
    )


def _key(row: IntervalResult, grain: str) -> str:
    return str(getattr(row, grain))


def rollups(rows: Sequence[IntervalResult]) -> dict[str, tuple[Rollup, ...]]:
    """One rollup per key for each grain, plus ``total``; totals add up across grains."""
    result: dict[str, tuple[Rollup, ...]] = {}
    for grain in (*GRAINS, "total"):
        groups: dict[str, list[IntervalResult]] = defaultdict(list)
        for row in rows:
            groups["all" if grain == "total" else _key(row, grain)].append(row)
        if grain == "total" and not groups:
            groups["all"] = []
        result[grain] = tuple(_rollup(grain, key, groups[key]) for key in sorted(groups))
    return result


def _rollup(grain: str, key: str, rows: Sequence[IntervalResult]) -> Rollup:
    totals = Totals()
    by_category: dict[str, int] = defaultdict(int)
    for row in rows:
        totals += row.totals
        for d in row.discrepancies:
            by_category[d.category.value] += d.amount
    return Rollup(grain, key, len(rows), totals, dict(by_category))
