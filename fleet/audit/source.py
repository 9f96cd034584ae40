"""Load a period's reconciliation inputs from the fleet store and reconcile them.

Sales, settlements and DEX reads are each read once as a stream ordered by machine and
handed on a batch of machines at a time, so memory follows the batch, not the month.

Ranges: cash counts closing in the period and each machine's count before it; sales,
settlements and tube payouts from the earliest cash window (or the look-around before the
period) to the look-around after it; DEX reads within the read tolerance of those
bounds; sales refunded in the period wherever they were; open telemetry gaps with the
times of the events around them.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, and_, func, select, true, tuple_, type_coerce

from fleet.audit.dexpoints import dex_point
from fleet.audit.parallel import default_workers, reconcile_in_processes
from fleet.audit.periods import Period, build_report, reconcile_rows
from fleet.audit.receipts import QueueReceiptSource, ReceiptSource, SalesReceiptSource
from fleet.audit.records import (
    AuditError,
    CashCount,
    DexPoint,
    MachineActivity,
    ReceiptRecord,
    ReconcileConfig,
    SaleMethod,
    SaleRecord,
    SettlementKind,
    SettlementRecord,
    Site,
    TelemetryGap,
    TubePayout,
)
from fleet.audit.report import IntervalResult, ReconciliationReport
from fleet.audit.stock_source import load_stock
from fleet.audit.streams import MachineStream, db_order, stream
from fleet.locations import machine_locations
from fleet.store.audit_models import audit_cash_counts, audit_settlements, audit_sites
from fleet.store.models import cash_movements, dex_reads, events, gaps, sales
from protocols.dex import DexError


def utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def reconcile_from_store(
    engine: Engine,
    period: Period,
    config: ReconcileConfig,
    *,
    machines: Sequence[str] | None = None,
    receipts: ReceiptSource | None = None,
    workers: int | None = None,
) -> ReconciliationReport:
    """Reconcile ``period`` reading the store in one pass, a batch of machines at a time:
    memory grows with the largest batch (about :data:`BATCH_SALES` sales), not the fleet.
    ``workers``: processes sharing the machines (None: one per core, at most
    :data:`MAX_WORKERS`, when the fleet has more than :data:`PARALLEL_FROM` machines)."""
    with engine.connect() as conn:
        ids = sorted(set(machines)) if machines else _machines(conn, period, period.end)
        order = db_order(conn, ids)
    count = workers if workers is not None else default_workers(len(order))
    if count <= 1 or len(order) < 2:
        rows = reconcile_rows_of(engine, period, config, machines, receipts)
    else:
        rows = reconcile_in_processes(engine, period, config, order, receipts, workers=count)
    return build_report(rows, period, config)


def reconcile_rows_of(
    engine: Engine,
    period: Period,
    config: ReconcileConfig,
    machines: Sequence[str] | None,
    receipts: ReceiptSource | None,
) -> list[IntervalResult]:
    """The rows of ``machines`` (None: every machine active in the period)."""
    rows: list[IntervalResult] = []
    with engine.connect() as conn:
        for batch in iter_activities(conn, period, config, machines=machines, receipts=receipts):
            rows.extend(reconcile_rows(batch, period, config))
    return rows


@functools.lru_cache(maxsize=4096)  # tenders repeat: the same few bills and coins
def _cash_to_box(raw: str | None) -> int:
    if not raw:
        return 0
    tender: dict[str, Any] = json.loads(raw)
    coins = sum(c["value"] * c["count"] for c in tender.get("coins", []) if not c["to_tube"])
    bills = sum(b["value"] * b["count"] for b in tender.get("bills", []))
    return int(coins + bills)


_METHODS = {m.value: m for m in SaleMethod}
_KINDS = {k.value: k for k in SettlementKind}


def _sale(row: Any, currency: str) -> SaleRecord:
    # Positional access: the hot path of a month's load (see _SALE_COLUMNS for the order).
    machine, seq, ts, selection, price, row_currency, method, ref, number, cash, lines, vat = row
    if row_currency != currency:
        raise AuditError(f"sale {machine}:{seq} is in {row_currency}, the report in {currency}")
    kind = _METHODS.get(method)
    if kind is None:
        raise AuditError(f"sale {machine}:{seq} has method {method!r}")
    return SaleRecord(
        f"{machine}:{seq}",
        machine,
        ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC),
        selection,
        price,
        kind,
        ref,
        number,
        _cash_to_box(cash),
        _basket(lines, f"{machine}:{seq}") if lines else (),
        vat,
    )


def _basket(raw: str, key: str) -> tuple[tuple[str, int], ...]:
    """A basket's lines as (selection, units); the product that left the machine."""
    try:
        data: Any = json.loads(raw)
        return tuple((str(line["selection"]), int(line["quantity"])) for line in data or ())
    except (ValueError, TypeError, KeyError) as exc:
        raise AuditError(f"sale {key} has unreadable basket lines: {exc}") from exc


def _settlement(row: Any) -> SettlementRecord:
    machine, key, at, amount, fee, kind, reference, original, settled_on = row
    found = _KINDS.get(kind)
    if found is None:
        raise AuditError(f"settlement {key} has kind {kind!r}")
    return SettlementRecord(
        key, machine, utc(at), amount, fee, found, reference, original, settled_on
    )


def _count(row: Any) -> CashCount:
    return CashCount(
        machine=row.machine_id,
        visit=row.visit,
        at=utc(row.counted_at),
        coins=row.coins,
        bills=row.bills,
        change_added=row.change_added,
        refunds_by_hand=row.refunds_by_hand,
    )


def _machines(conn: Connection, period: Period, extra: datetime) -> list[str]:
    found: set[str] = set()
    for column, at in (
        (sales.c.machine_id, sales.c.ts),
        (audit_cash_counts.c.machine_id, audit_cash_counts.c.counted_at),
        (audit_settlements.c.machine_id, audit_settlements.c.at),
    ):
        stmt = select(column).where(and_(at >= period.start, at < extra)).distinct()
        found.update(conn.scalars(stmt))
    return sorted(found)


def load_activities(
    conn: Connection,
    period: Period,
    config: ReconcileConfig,
    *,
    machines: Sequence[str] | None = None,
    receipts: ReceiptSource | None = None,
) -> list[MachineActivity]:
    """Every machine's activity at once (small periods, tests)."""
    return [
        activity
        for batch in iter_activities(conn, period, config, machines=machines, receipts=receipts)
        for activity in batch
    ]


def iter_activities(
    conn: Connection,
    period: Period,
    config: ReconcileConfig,
    *,
    machines: Sequence[str] | None = None,
    receipts: ReceiptSource | None = None,
) -> Iterator[list[MachineActivity]]:
    """Batches of machines' activities, each about :data:`BATCH_SALES` sales or
    :data:`BATCH_MACHINES` machines. Sales, settlements and DEX reads are streamed once in
    machine order; the time ranges are the same for every machine (see the module doc)."""
    after = period.end + config.lookaround
    ids = sorted(set(machines)) if machines else _machines(conn, period, period.end)
    if not ids:
        return
    tol = config.read_tolerance
    previous = dict(
        conn.execute(
            select(audit_cash_counts.c.machine_id, func.max(audit_cash_counts.c.counted_at))
            .where(
                and_(
                    _among(audit_cash_counts.c.machine_id, machines),
                    audit_cash_counts.c.counted_at <= period.start,
                )
            )
            .group_by(audit_cash_counts.c.machine_id)
        ).all()
    )
    previous = {m: t for m, t in previous.items() if m in set(ids)}
    earliest = min([period.start - config.lookaround, *(utc(t) - tol for t in previous.values())])
    counts = _counts(conn, ids, machines, previous=previous, earliest=earliest, end=period.end)
    sites = _sites(conn, ids, machines)
    open_gaps = _gaps(conn, ids)
    payouts: dict[str, list[TubePayout]] = defaultdict(list)
    for machine, payout_at, amount in conn.execute(
        select(cash_movements.c.machine_id, cash_movements.c.ts, cash_movements.c.amount).where(
            and_(
                _among(cash_movements.c.machine_id, machines),
                cash_movements.c.kind == "tube_payout",
                cash_movements.c.ts >= earliest,
                cash_movements.c.ts < after,
            )
        )
    ):
        payouts[machine].append(TubePayout(machine, utc(payout_at), amount))

    order = db_order(conn, ids)
    rank = {m: n for n, m in enumerate(order)}
    sale_stream = MachineStream(
        stream(
            conn,
            select(*_SALE_COLUMNS)
            .where(and_(_among(sales.c.machine_id, machines), sales.c.ts >= earliest,
                        sales.c.ts < after))
            .order_by(sales.c.machine_id, sales.c.seq),
        ),
        rank,
    )  # fmt: skip
    settlement_stream = MachineStream(
        stream(
            conn,
            select(*_SETTLEMENT_COLUMNS)
            .where(
                and_(
                    _among(audit_settlements.c.machine_id, machines),
                    audit_settlements.c.at >= earliest,
                    audit_settlements.c.at < after,
                )
            )
            .order_by(audit_settlements.c.machine_id, audit_settlements.c.at),
        ),
        rank,
    )
    read_stream = MachineStream(
        stream(
            conn,
            select(dex_reads.c.machine_id, dex_reads.c.seq, dex_reads.c.read_at, dex_reads.c.raw)
            .where(
                and_(
                    _among(dex_reads.c.machine_id, machines),
                    dex_reads.c.read_at >= earliest - tol,
                    dex_reads.c.read_at <= period.end + tol,
                )
            )
            .order_by(dex_reads.c.machine_id, dex_reads.c.read_at),
        ),
        rank,
    )
    source = receipts or SalesReceiptSource(config.vat_rate_bp)
    if isinstance(source, QueueReceiptSource):  # one ordered stream, like the sales
        source = source.streamed(conn, machines, rank, earliest, after)
    finish = functools.partial(
        _activities, conn, source=source, earliest=earliest, after=after, config=config,
        counts=counts, sites=sites, gaps=open_gaps, payouts=payouts,
    )  # fmt: skip
    batch: list[_Loaded] = []
    held = 0
    for machine in order:
        loaded = _Loaded(
            machine,
            [_sale(r, config.currency) for r in sale_stream.take(machine)],
            [_settlement(r) for r in settlement_stream.take(machine)],
            read_stream.take(machine),
        )
        batch.append(loaded)
        held += len(loaded.sales) + len(loaded.settlements)
        if held >= BATCH_SALES or len(batch) >= BATCH_MACHINES:
            yield finish(batch)
            batch, held = [], 0
    if batch:
        yield finish(batch)


BATCH_SALES = 100_000
BATCH_MACHINES = 500
# The plain DateTime (not the model's time-zone-checking decorator): _sale sets UTC itself,
# and the decorator's per-row conversion was a tenth of the reconciliation's time.
_SALE_COLUMNS = (
    sales.c.machine_id, sales.c.seq, type_coerce(sales.c.ts, DateTime()).label("ts"),
    sales.c.selection, sales.c.price,
    sales.c.currency, sales.c.method, sales.c.payment_ref, sales.c.receipt_number, sales.c.cash,
    sales.c.lines, sales.c.receipt_vat,
)  # fmt: skip
_SETTLEMENT_COLUMNS = (
    audit_settlements.c.machine_id, audit_settlements.c.row_key,
    type_coerce(audit_settlements.c.at, DateTime()).label("at"),
    audit_settlements.c.amount, audit_settlements.c.fee, audit_settlements.c.kind,
    audit_settlements.c.reference, audit_settlements.c.original_reference,
    audit_settlements.c.settlement_date,
)  # fmt: skip


def _among(column: Any, machines: Sequence[str] | None) -> Any:
    """``column IN machines`` when the caller named machines; otherwise no filter (the
    streams skip machines outside the period's list, cheaper than a long IN list)."""
    return column.in_(sorted(set(machines))) if machines else true()


@dataclass(slots=True)
class _Loaded:
    machine: str
    sales: list[SaleRecord]
    settlements: list[SettlementRecord]
    reads: list[Any]


def _sites(conn: Connection, ids: Sequence[str], machines: Sequence[str] | None) -> dict[str, Site]:
    """Rollup keys: the fleet's locations (restocking master data, fleet.locations), with
    ``vend audit site`` entries (``audit_sites``) overriding them machine by machine."""
    found = {
        machine: Site(ref.location_id, ref.route_id or Site().route)
        for machine, ref in machine_locations(conn, ids).items()
    }
    found.update(
        (r.machine_id, Site(r.location, r.route))
        for r in conn.execute(select(audit_sites).where(_among(audit_sites.c.machine_id, machines)))
    )
    return found


def _counts(
    conn: Connection,
    ids: Sequence[str],
    machines: Sequence[str] | None,
    *,
    previous: dict[str, datetime],
    earliest: datetime,
    end: datetime,
) -> dict[str, list[CashCount]]:
    wanted = set(ids)
    rows = conn.execute(
        select(audit_cash_counts)
        .where(
            and_(
                _among(audit_cash_counts.c.machine_id, machines),
                audit_cash_counts.c.counted_at >= earliest,
                audit_cash_counts.c.counted_at <= end,
            )
        )
        .order_by(audit_cash_counts.c.machine_id, audit_cash_counts.c.counted_at)
    )
    counts: dict[str, list[CashCount]] = defaultdict(list)
    for row in rows:
        if row.machine_id not in wanted:
            continue
        if row.machine_id not in previous or utc(row.counted_at) >= utc(previous[row.machine_id]):
            counts[row.machine_id].append(_count(row))
    return counts


def _activities(
    conn: Connection,
    batch: Sequence[_Loaded],
    *,
    source: ReceiptSource,
    earliest: datetime,
    after: datetime,
    config: ReconcileConfig,
    counts: dict[str, list[CashCount]],
    sites: dict[str, Site],
    gaps: dict[str, list[TelemetryGap]],
    payouts: dict[str, list[TubePayout]],
) -> list[MachineActivity]:
    ids = [item.machine for item in batch]
    by_sale = {s.key: s for item in batch for s in item.sales}
    known_refs = {s.payment_ref for s in by_sale.values() if s.payment_ref}
    wanted = (
        {
            s.original_reference or s.reference
            for item in batch
            for s in item.settlements
            if s.kind is not SettlementKind.SALE
        }
        - known_refs
        - {None}
    )
    if wanted:  # refunds of sales older than the loaded range
        for row in conn.execute(
            select(*_SALE_COLUMNS).where(
                and_(sales.c.machine_id.in_(ids), sales.c.payment_ref.in_(wanted))
            )
        ):
            by_sale.setdefault(f"{row.machine_id}:{row.seq}", _sale(row, config.currency))
    all_sales = sorted(by_sale.values(), key=lambda s: (s.machine, s.at, s.key))
    receipt_list = source.load(conn, ids, earliest, after, all_sales)
    stock = load_stock(conn, ids, earliest, after)
    group: dict[str, dict[str, list[Any]]] = {m: defaultdict(list) for m in ids}
    for sale in all_sales:
        group[sale.machine]["sales"].append(sale)
    for receipt in receipt_list:
        if receipt.machine in group:
            group[receipt.machine]["receipts"].append(receipt)
    return [
        MachineActivity(
            machine=item.machine,
            site=sites.get(item.machine, Site()),
            sales=tuple(group[item.machine]["sales"]),
            receipts=tuple(sorted(group[item.machine]["receipts"], key=_receipt_order)),
            settlements=tuple(item.settlements),
            counts=tuple(counts.get(item.machine, ())),
            dex=tuple(_points(item.reads)),
            tube_payouts=tuple(payouts.get(item.machine, ())),
            gaps=tuple(gaps.get(item.machine, ())),
            stock=tuple(stock.get(item.machine, ())),
        )
        for item in batch
    ]


def _receipt_order(receipt: ReceiptRecord) -> tuple[datetime, str]:
    return receipt.at, receipt.key


def _points(rows: Sequence[Any]) -> list[DexPoint]:
    found: list[DexPoint] = []
    for machine, seq, read_at, raw in rows:
        try:
            found.append(dex_point(f"dex:{machine}:{seq}", machine, utc(read_at), raw))
        except DexError:
            continue  # unreadable reads mark no boundary; the interval is then not DEX-checked
    return found


def _gaps(conn: Connection, ids: Sequence[str]) -> dict[str, list[TelemetryGap]]:
    rows = conn.execute(
        select(gaps.c.machine_id, gaps.c.from_seq, gaps.c.to_seq).where(
            and_(gaps.c.machine_id.in_(ids), gaps.c.filled_at.is_(None))
        )
    ).all()
    if not rows:
        return {}
    pairs = [(m, a - 1) for m, a, _ in rows] + [(m, b + 1) for m, _, b in rows]
    times = {
        (m, seq): utc(ts)
        for m, seq, ts in conn.execute(
            select(events.c.machine_id, events.c.seq, events.c.ts).where(
                tuple_(events.c.machine_id, events.c.seq).in_(pairs)
            )
        )
    }
    found: dict[str, list[TelemetryGap]] = defaultdict(list)
    for m, a, b in rows:
        found[m].append(TelemetryGap(m, a, b, times.get((m, a - 1)), times.get((m, b + 1))))
    return found
