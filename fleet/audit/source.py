"""Load a period's reconciliation inputs from the fleet store (one query per table).

Ranges: cash counts closing in the period and each machine's count before it; sales,
settlements and tube payouts from the earliest cash window (or the look-around before the
period) to the look-around after it; DEX reads within the read tolerance of those
bounds; sales refunded in the period wherever they were; open telemetry gaps with the
times of the events around them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, select, tuple_

from fleet.audit.dexpoints import dex_point
from fleet.audit.periods import Period, reconcile_period
from fleet.audit.receipts import ReceiptSource, SalesReceiptSource
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
from fleet.audit.report import ReconciliationReport
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
) -> ReconciliationReport:
    with engine.connect() as conn:
        activities = load_activities(conn, period, config, machines=machines, receipts=receipts)
    return reconcile_period(activities, period, config)


def _cash_to_box(raw: str | None) -> int:
    if not raw:
        return 0
    tender: dict[str, Any] = json.loads(raw)
    coins = sum(c["value"] * c["count"] for c in tender.get("coins", []) if not c["to_tube"])
    bills = sum(b["value"] * b["count"] for b in tender.get("bills", []))
    return int(coins + bills)


def _sale(row: Any, currency: str) -> SaleRecord:
    if row.currency != currency:
        raise AuditError(
            f"sale {row.machine_id}:{row.seq} is in {row.currency}, the report in {currency}"
        )
    try:
        method = SaleMethod(row.method)
    except ValueError:
        raise AuditError(f"sale {row.machine_id}:{row.seq} has method {row.method!r}") from None
    return SaleRecord(
        key=f"{row.machine_id}:{row.seq}",
        machine=row.machine_id,
        at=utc(row.ts),
        selection=row.selection,
        price=row.price,
        method=method,
        payment_ref=row.payment_ref,
        receipt_number=row.receipt_number,
        cash_to_box=_cash_to_box(row.cash),
    )


def _settlement(row: Any) -> SettlementRecord:
    return SettlementRecord(
        key=row.row_key,
        machine=row.machine_id,
        at=utc(row.at),
        amount=row.amount,
        fee=row.fee,
        kind=SettlementKind(row.kind),
        reference=row.reference,
        original_reference=row.original_reference,
        settlement_date=row.settlement_date,
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
    after = period.end + config.lookaround
    ids = sorted(machines) if machines else _machines(conn, period, period.end)
    if not ids:
        return []
    tol = config.read_tolerance
    previous = dict(
        conn.execute(
            select(audit_cash_counts.c.machine_id, func.max(audit_cash_counts.c.counted_at))
            .where(
                and_(
                    audit_cash_counts.c.machine_id.in_(ids),
                    audit_cash_counts.c.counted_at <= period.start,
                )
            )
            .group_by(audit_cash_counts.c.machine_id)
        ).all()
    )
    earliest = min([period.start - config.lookaround, *(utc(t) - tol for t in previous.values())])
    count_rows = conn.execute(
        select(audit_cash_counts)
        .where(
            and_(
                audit_cash_counts.c.machine_id.in_(ids),
                audit_cash_counts.c.counted_at >= earliest,
                audit_cash_counts.c.counted_at <= period.end,
            )
        )
        .order_by(audit_cash_counts.c.machine_id, audit_cash_counts.c.counted_at)
    ).all()
    counts: dict[str, list[CashCount]] = defaultdict(list)
    for row in count_rows:
        if row.machine_id not in previous or utc(row.counted_at) >= utc(previous[row.machine_id]):
            counts[row.machine_id].append(_count(row))

    sale_rows = conn.execute(
        select(sales)
        .where(and_(sales.c.machine_id.in_(ids), sales.c.ts >= earliest, sales.c.ts < after))
        .order_by(sales.c.machine_id, sales.c.ts, sales.c.seq)
    ).all()
    by_sale = {f"{r.machine_id}:{r.seq}": _sale(r, config.currency) for r in sale_rows}

    settlement_rows = conn.execute(
        select(audit_settlements)
        .where(
            and_(
                audit_settlements.c.machine_id.in_(ids),
                audit_settlements.c.at >= earliest,
                audit_settlements.c.at < after,
            )
        )
        .order_by(audit_settlements.c.machine_id, audit_settlements.c.at)
    ).all()
    settled = [_settlement(r) for r in settlement_rows]
    known_refs = {s.payment_ref for s in by_sale.values() if s.payment_ref}
    wanted = (
        {s.original_reference or s.reference for s in settled if s.kind is not SettlementKind.SALE}
        - known_refs
        - {None}
    )
    if wanted:  # refunds of sales older than the loaded range
        for row in conn.execute(
            select(sales).where(and_(sales.c.machine_id.in_(ids), sales.c.payment_ref.in_(wanted)))
        ):
            by_sale.setdefault(f"{row.machine_id}:{row.seq}", _sale(row, config.currency))
    all_sales = sorted(by_sale.values(), key=lambda s: (s.machine, s.at, s.key))
    source = receipts or SalesReceiptSource(config.vat_rate_bp)
    receipt_list = source.load(conn, ids, earliest, after, all_sales)

    reads = _reads(conn, ids, earliest - tol, period.end + tol)
    payouts = conn.execute(
        select(cash_movements.c.machine_id, cash_movements.c.ts, cash_movements.c.amount).where(
            and_(
                cash_movements.c.machine_id.in_(ids),
                cash_movements.c.kind == "tube_payout",
                cash_movements.c.ts >= earliest,
                cash_movements.c.ts < after,
            )
        )
    ).all()
    sites = {
        r.machine_id: Site(r.location, r.route)
        for r in conn.execute(select(audit_sites).where(audit_sites.c.machine_id.in_(ids)))
    }
    open_gaps = _gaps(conn, ids)

    group: dict[str, dict[str, list[Any]]] = {m: defaultdict(list) for m in ids}
    for sale in all_sales:
        group[sale.machine]["sales"].append(sale)
    for receipt in receipt_list:
        if receipt.machine in group:
            group[receipt.machine]["receipts"].append(receipt)
    for settlement in settled:
        group[settlement.machine]["settlements"].append(settlement)
    for machine, payout_at, amount in payouts:
        group[machine]["payouts"].append(TubePayout(machine, utc(payout_at), amount))
    return [
        MachineActivity(
            machine=m,
            site=sites.get(m, Site()),
            sales=tuple(group[m]["sales"]),
            receipts=tuple(sorted(group[m]["receipts"], key=_receipt_order)),
            settlements=tuple(group[m]["settlements"]),
            counts=tuple(counts.get(m, ())),
            dex=tuple(reads.get(m, ())),
            tube_payouts=tuple(group[m]["payouts"]),
            gaps=tuple(open_gaps.get(m, ())),
        )
        for m in ids
    ]


def _receipt_order(receipt: ReceiptRecord) -> tuple[datetime, str]:
    return receipt.at, receipt.key


def _reads(
    conn: Connection, ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[DexPoint]]:
    found: dict[str, list[DexPoint]] = defaultdict(list)
    rows = conn.execute(
        select(dex_reads.c.machine_id, dex_reads.c.seq, dex_reads.c.read_at, dex_reads.c.raw)
        .where(
            and_(
                dex_reads.c.machine_id.in_(ids),
                dex_reads.c.read_at >= start,
                dex_reads.c.read_at <= end,
            )
        )
        .order_by(dex_reads.c.machine_id, dex_reads.c.read_at)
    )
    for machine, seq, read_at, raw in rows:
        try:
            found[machine].append(dex_point(f"dex:{machine}:{seq}", machine, utc(read_at), raw))
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
