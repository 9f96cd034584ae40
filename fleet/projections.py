"""Read models built from newly stored events, in the event's own transaction.

Only events that were really inserted come here, so a duplicate changes nothing. The
caller holds the machine rows locked, so per-machine read-then-write below is safe with
several ingest workers. Stock levels are absolute and carry the seq they came from: a
stock message delivered late never overwrites a newer level. Alarms pair a raise with
its clear by (code, device, selection), whichever arrives first.

A new sale's e-receipt is queued for transmission here, in the sale's transaction, so a
sale is never stored without its receipt queued, nor the other way round. A receipt that
cannot be queued never fails ingest: the sale is stored and says why in
``sales.receipt_problem``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, select, update

from fleet.commands import record_ack
from fleet.einvoice.receipt import OutgoingReceipt
from fleet.einvoice.sales import SaleRow, SalesEnqueued, enqueue_for_sales, outgoing_from_receipt
from fleet.reviews import project_review
from fleet.store.models import (
    alarms,
    cash_movements,
    dex_reads,
    refunds,
    sales,
    service_visits,
    stock_levels,
)
from fleet.store.upsert import bulk_insert, insert_for
from protocols.einvoice import Receipt
from protocols.telemetry import (
    AckEnvelope,
    AlarmEnvelope,
    AlarmState,
    CashEnvelope,
    DexEnvelope,
    RefundEnvelope,
    ReviewEnvelope,
    SaleEnvelope,
    ServiceEnvelope,
    StockEnvelope,
    StockKind,
    TelemetryEnvelope,
)

log = logging.getLogger(__name__)

SaleKey = tuple[str, int]  # (machine_id, seq)
_INT64 = 2**63  # receipt amounts go into BIGINT columns


def _json(model: Any) -> str | None:
    if model is None:
        return None
    if isinstance(model, list):
        return json.dumps([item.model_dump(mode="json") for item in model], ensure_ascii=False)
    return str(model.model_dump_json())


def project(
    conn: Connection,
    new_events: Sequence[TelemetryEnvelope],
    *,
    now: datetime,
    receipt_problems: Mapping[SaleKey, str] | None = None,
) -> SalesEnqueued:
    """Update every read model for events that were just inserted (in seq order) and queue
    their sales' receipts. ``receipt_problems``: sales whose receipt ingest had to drop
    before decoding them (see fleet.ingest). Returns what became of the receipts."""
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    docs: dict[SaleKey, Receipt] = {}
    for env in new_events:
        if isinstance(env, SaleEnvelope):
            rows["sales"].append(_sale(env, docs))
        elif isinstance(env, RefundEnvelope):
            rows["refunds"].append(_refund(env))
        elif isinstance(env, CashEnvelope):
            rows["cash"].append(_cash(env))
        elif isinstance(env, DexEnvelope):
            rows["dex"].append(_dex(env))
        elif isinstance(env, StockEnvelope):
            _stock(conn, env)
        elif isinstance(env, AlarmEnvelope):
            _alarm(conn, env)
        elif isinstance(env, ServiceEnvelope):
            _service(conn, env)
        elif isinstance(env, AckEnvelope):
            record_ack(conn, env.machine_id, env.body, env.ts)
        elif isinstance(env, ReviewEnvelope):
            project_review(conn, env)
    receipts = _queue_receipts(conn, rows["sales"], docs, now, receipt_problems or {})
    for key, table in (
        ("sales", sales),
        ("refunds", refunds),
        ("cash", cash_movements),
        ("dex", dex_reads),
    ):
        bulk_insert(conn, table, rows[key])
    return receipts


def _sale(env: SaleEnvelope, docs: dict[SaleKey, Receipt]) -> dict[str, Any]:
    body = env.body
    row = {
        "machine_id": env.machine_id,
        "seq": env.seq,
        "ts": env.ts,
        "vend_id": body.vend_id,
        "selection": body.selection,
        "product": body.product,
        "price": body.price,
        "currency": body.currency,
        "method": body.method.value,
        "reader": body.reader,
        "payment_ref": body.payment_ref,
        "settled": body.settled,
        "receipt_number": body.receipt_number,
        "cash": _json(body.cash),
        "lines": _json(body.lines),
        "receipt_symbol": None,
        "receipt_no": None,
        "receipt_total": None,
        "receipt_vat": None,
        "receipt_problem": None,
    }
    doc = body.receipt
    if doc is None:
        return row
    shown = display_number(doc)
    if not all(-_INT64 <= amount < _INT64 for amount in (doc.total, doc.total_vat)):
        row["receipt_problem"] = f"receipt {shown}: its amounts do not fit 64 bits"
        log.warning("sale %s seq %d: %s", env.machine_id, env.seq, row["receipt_problem"])
        return row
    if body.receipt_number != shown:
        log.warning(
            "sale %s seq %d: receipt_number %r does not match its receipt %s; using the receipt's",
            env.machine_id, env.seq, body.receipt_number, shown,
        )  # fmt: skip
    docs[(env.machine_id, env.seq)] = doc
    row.update(
        receipt_number=shown,
        receipt_symbol=doc.symbol,
        receipt_no=doc.number,
        receipt_total=doc.total,
        receipt_vat=doc.total_vat,
    )
    return row


def display_number(doc: Receipt) -> str:
    """``1C26MAB-00000042``: the machine's spelling (controller.receipts.receipt_number)."""
    return f"{doc.symbol}-{doc.number:08d}"


def _queue_receipts(
    conn: Connection,
    sale_rows: list[dict[str, Any]],
    docs: Mapping[SaleKey, Receipt],
    now: datetime,
    dropped: Mapping[SaleKey, str],
) -> SalesEnqueued:
    """Queue the receipts in ``docs``; every sale whose receipt was not queued gets its
    ``receipt_problem`` (a problem found earlier, or the queue's)."""

    def build(row: SaleRow) -> OutgoingReceipt | None:
        doc = docs.get((row["machine_id"], row["seq"]))
        if doc is None:
            return None
        return outgoing_from_receipt(row["machine_id"], doc, sale_seq=row["seq"])

    with_doc = [r for r in sale_rows if (r["machine_id"], r["seq"]) in docs]
    report = enqueue_for_sales(conn, with_doc, now, build=build)
    for row in sale_rows:
        key = (row["machine_id"], row["seq"])
        why = row["receipt_problem"] or dropped.get(key) or report.reasons.get(key)
        if why is not None and key not in report.reasons:
            report.problems.append(f"{key[0]} seq {key[1]}: {why}")
            report.reasons[key] = why
        row["receipt_problem"] = why
    return report


def _refund(env: RefundEnvelope) -> dict[str, Any]:
    body = env.body
    return {
        "machine_id": env.machine_id,
        "seq": env.seq,
        "ts": env.ts,
        "kind": body.kind.value,
        "amount": body.amount,
        "currency": body.currency,
        "vend_id": body.vend_id,
        "payout_id": body.payout_id,
        "reason": body.reason,
    }


def _cash(env: CashEnvelope) -> dict[str, Any]:
    body = env.body
    return {
        "machine_id": env.machine_id,
        "seq": env.seq,
        "ts": env.ts,
        "kind": body.kind.value,
        "amount": body.amount,
        "currency": body.currency,
        "tubes": _json(body.tubes),
        "cash_box": _json(body.cash_box),
        "detail": body.detail,
    }


def _dex(env: DexEnvelope) -> dict[str, Any]:
    body = env.body
    return {
        "machine_id": env.machine_id,
        "seq": env.seq,
        "read_at": body.read_at,
        "reset": body.reset,
        "raw": body.raw,
        "summary": body.summary.model_dump_json(),
    }


def _stock(conn: Connection, env: StockEnvelope) -> None:
    body = env.body
    values = [
        {
            "machine_id": env.machine_id,
            "selection": row.code,
            "product": row.product,
            "count": row.count,
            "capacity": row.capacity,
            "par": row.par,
            "price": row.price,
            "currency": body.currency,
            "in_service": row.in_service,
            "reason": row.reason,
            "seq": env.seq,
            "updated_at": env.ts,
        }
        for row in body.selections
    ]
    if values:
        stmt = insert_for(conn, stock_levels).values(values)
        newer = {
            name: stmt.excluded[name]
            for name in (
                "product", "count", "capacity", "par", "price", "currency",
                "in_service", "reason", "seq", "updated_at",
            )
        }  # fmt: skip
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["machine_id", "selection"],
                set_=newer,
                where=stock_levels.c.seq < stmt.excluded.seq,
            )
        )
    if body.kind is StockKind.SNAPSHOT:
        # A snapshot lists every selection: older rows it leaves out no longer exist.
        conn.execute(
            delete(stock_levels).where(
                and_(
                    stock_levels.c.machine_id == env.machine_id,
                    stock_levels.c.seq < env.seq,
                    stock_levels.c.selection.not_in([row.code for row in body.selections]),
                )
            )
        )


def _alarm(conn: Connection, env: AlarmEnvelope) -> None:
    body = env.body
    same = and_(
        alarms.c.machine_id == env.machine_id,
        alarms.c.code == body.code.value,
        alarms.c.device.is_(None) if body.device is None else alarms.c.device == body.device,
        alarms.c.selection.is_(None)
        if body.selection is None
        else alarms.c.selection == body.selection,
    )
    if body.state is AlarmState.RAISED:
        # A clear that overtook this raise is waiting for it (raised_at still NULL).
        waiting = conn.execute(
            select(alarms.c.id)
            .where(and_(same, alarms.c.raised_at.is_(None), alarms.c.cleared_seq > env.seq))
            .order_by(alarms.c.cleared_seq)
            .limit(1)
        ).first()
        if waiting is not None:
            conn.execute(
                update(alarms)
                .where(alarms.c.id == waiting.id)
                .values(raised_at=env.ts, raised_seq=env.seq, severity=body.severity.value)
            )
            return
        conn.execute(
            alarms.insert().values(
                machine_id=env.machine_id,
                code=body.code.value,
                device=body.device,
                selection=body.selection,
                severity=body.severity.value,
                detail=body.detail,
                raised_at=env.ts,
                raised_seq=env.seq,
            )
        )
        return
    opened = conn.execute(
        select(alarms.c.id)
        .where(and_(same, alarms.c.cleared_at.is_(None), alarms.c.raised_seq < env.seq))
        .order_by(alarms.c.raised_seq.desc())
        .limit(1)
    ).first()
    if opened is not None:
        conn.execute(
            update(alarms)
            .where(alarms.c.id == opened.id)
            .values(cleared_at=env.ts, cleared_seq=env.seq)
        )
        return
    conn.execute(
        alarms.insert().values(
            machine_id=env.machine_id,
            code=body.code.value,
            device=body.device,
            selection=body.selection,
            severity=body.severity.value,
            detail=body.detail,
            cleared_at=env.ts,
            cleared_seq=env.seq,
        )
    )


def _service(conn: Connection, env: ServiceEnvelope) -> None:
    body = env.body
    values = {
        "closed_at": body.closed_at,
        "operator": body.operator,
        "currency": body.currency,
        "actions": _json(body.actions) or "[]",
        "seq": env.seq,
    }
    existing = conn.execute(
        select(service_visits.c.id, service_visits.c.seq).where(
            and_(
                service_visits.c.machine_id == env.machine_id,
                service_visits.c.opened_at == body.opened_at,
            )
        )
    ).first()
    if existing is None:
        conn.execute(
            service_visits.insert().values(
                machine_id=env.machine_id, opened_at=body.opened_at, **values
            )
        )
    elif existing.seq < env.seq:
        conn.execute(
            update(service_visits).where(service_visits.c.id == existing.id).values(values)
        )
