"""A cabinet's sales as DEX counters: what :mod:`controller.audit` adds to a machine's.

A cabinet session is counted from its ``closed`` row in the cabinet log once the card
paid for it (``captured``; ``refund_owed`` too: the card paid, more than it should).
Each item taken is a paid vend of its sku (PA1/PA2, the sku as the selection code);
the amount charged goes to the paid-vend and cashless totals (VA1, DA2), so they match
the ``sale`` telemetry the fleet reconciles against. Sales recorded unsettled, held for
review or not charged are no paid vends: no money arrived for them.

The counters are cumulative over the log; a read with reset stores them
(:meth:`CabinetSales.as_json`) so the interim counters are the difference.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.cabinet_payment import CAPTURED, REFUND_OWED

_PAID = frozenset({CAPTURED, REFUND_OWED})


@dataclass(frozen=True, slots=True)
class SkuSales:
    """Items of one sku sold: PA1 name and price (the latest), PA2 count and value."""

    name: str
    price: int
    count: int = 0
    value: int = 0


@dataclass(frozen=True, slots=True)
class CabinetSales:
    """The cabinet's paid vends: per sku, and the items and money in total."""

    skus: dict[str, SkuSales] = field(default_factory=dict)
    count: int = 0  # items sold (paid vends)
    value: int = 0  # minor units the card paid

    def as_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "value": self.value,
            "skus": {s: {"count": v.count, "value": v.value} for s, v in self.skus.items()},
        }


def base_of(snapshot: Mapping[str, Any], sku: str | None = None) -> tuple[int, int]:
    """(value, count) at the last read with reset: of one sku, or the totals."""
    part = snapshot.get("skus", {}).get(sku, {}) if sku is not None else snapshot
    return int(part.get("value", 0)), int(part.get("count", 0))


def cabinet_sales(db: sqlite3.Connection) -> CabinetSales:
    """Every paid cabinet session in the log, summed (nothing if there is no log)."""
    exists = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cabinet_log'"
    ).fetchone()
    if exists is None:
        return CabinetSales()
    skus: dict[str, SkuSales] = {}
    count = value = 0
    rows = db.execute("SELECT body FROM cabinet_log ORDER BY seq").fetchall()
    for (body,) in rows:
        record = json.loads(body)
        if record.get("kind") != "closed" or record.get("outcome") not in _PAID:
            continue
        value += int(record.get("charged", 0))
        for line in record.get("lines", ()):
            sku, quantity, price = str(line["sku"]), int(line["quantity"]), int(line["unit_price"])
            old = skus.get(sku, SkuSales(str(line["name"]), price))
            skus[sku] = SkuSales(
                str(line["name"]), price, old.count + quantity, old.value + quantity * price
            )
            count += quantity
    return CabinetSales(skus, count, value)
