"""The smart cabinet's part of the end-of-day summary, read from the fleet database.

What the fleet holds for the cabinet: its sales (items per sale) and whether each one's
transmitted e-receipt lists exactly the items of the sale, the review queue, the card
processor's settlement rows, the cabinet's reconciliation rollup, its place in the
store and tomorrow's restock decision and pick rows for its shelves. The customers'
own tally (what they took, put back) comes alongside, from the simulated world.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy import Engine, func, select

from cli.demo.cabinet import DemoCabinet
from cli.demo.cabinet_shoppers import CabinetStats
from fleet.locations import machine_locations
from fleet.store.audit_models import audit_settlements
from fleet.store.einvoice_models import receipt_queue
from fleet.store.models import sales
from fleet.store.review_models import review_queue
from protocols.einvoice.errors import EinvoiceError
from protocols.einvoice.xml_read import from_xml


def cabinet_summary(
    engine: Engine,
    cabinet: DemoCabinet,
    stats: CabinetStats,
    reconciliation: dict[str, Any],
    plan: dict[str, Any],
) -> dict[str, Any]:
    mid = cabinet.machine_id
    with engine.connect() as conn:
        sold = conn.execute(
            select(sales.c.price, sales.c.lines, sales.c.receipt_symbol, sales.c.receipt_no)
            .where(sales.c.machine_id == mid)
        ).all()  # fmt: skip
        documents = {
            (r.series, r.number): (r.state, r.document)
            for r in conn.execute(
                select(
                    receipt_queue.c.series,
                    receipt_queue.c.number,
                    receipt_queue.c.state,
                    receipt_queue.c.document,
                ).where(receipt_queue.c.machine_id == mid)
            )
        }
        reviews = conn.execute(
            select(review_queue.c.rule, review_queue.c.outcome, review_queue.c.reasons,
                   review_queue.c.charged, review_queue.c.due, review_queue.c.state)
            .where(review_queue.c.machine_id == mid)
            .order_by(review_queue.c.id)
        ).all()  # fmt: skip
        settled = conn.execute(
            select(func.count(), func.coalesce(func.sum(audit_settlements.c.amount), 0)).where(
                audit_settlements.c.machine_id == mid
            )
        ).one()
        where = machine_locations(conn, [mid]).get(mid)
    items = receipted = itemised = 0
    for row in sold:
        lines = _items((ln["selection"], ln["product"], ln["quantity"]) for ln in _lines(row.lines))
        items += sum(lines.values())
        state, document = documents.get((row.receipt_symbol, str(row.receipt_no)), (None, None))
        if document is None:
            continue
        receipted += state == "accepted"
        itemised += _receipt_lists(document, lines, int(row.price))
    return {
        "machine": mid,
        "location": None if where is None else where.location_id,
        "customers": stats.as_json(),
        "sales": {
            "count": len(sold),
            "value": sum(int(r.price) for r in sold),
            "items": items,
            "receipts_accepted": receipted,
            "receipts_listing_every_item": itemised,
        },
        "reviews": [
            {
                "rule": r.rule,
                "outcome": r.outcome,
                "reasons": json.loads(r.reasons),
                "charged": int(r.charged),
                "due": None if r.due is None else int(r.due),
                "state": r.state,
            }
            for r in reviews
        ],
        "settlements": {"rows": int(settled[0]), "amount": int(settled[1])},
        "reconciliation": reconciliation.get("by_machine", {}).get(mid),
        "restock": _restock(plan, mid),
    }


def _lines(raw: str | None) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = json.loads(raw) if raw else []
    return lines


def _items(lines: Any) -> Counter[tuple[str, str]]:
    """(article code, product) -> units."""
    counted: Counter[tuple[str, str]] = Counter()
    for code, product, quantity in lines:
        counted[(str(code), str(product))] += int(quantity)
    return counted


def _receipt_lists(document: bytes, lines: Counter[tuple[str, str]], price: int) -> bool:
    """The transmitted receipt names every item of the sale, in its quantity, and the
    sale's price as its total."""
    try:
        receipt = from_xml(document)
    except EinvoiceError:
        return False
    listed = _items((ln.code, ln.product, ln.quantity) for ln in receipt.lines)
    return listed == lines and receipt.total == price


def _restock(plan: dict[str, Any], mid: str) -> dict[str, Any]:
    score = next((m for m in plan["machines"] if m["machine_id"] == mid), None)
    stop = next(
        (s for r in plan["routes"] for s in r["stops"] if s["machine_id"] == mid), None
    )  # fmt: skip
    return {
        "planned": score is not None,
        "decision": None if score is None else score["decision"],
        "reasons": [] if score is None else [r["code"] for r in score["reasons"]],
        "routed": stop is not None,
        "picks": [] if stop is None else stop["picks"],
    }
