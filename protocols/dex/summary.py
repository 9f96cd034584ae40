"""The summary of a DEX file that `vend dex parse --json` prints and ingest code can reuse.

Totals are the since-initialisation counters: VA101 (value of paid vends), VA102 (number),
CA201 (cash sales value), DA201 (cashless sales value). Selections carry PA101, PA102,
PA201 and PA202. All money is in the file's own minor units (see ``decimal_places``).
"""

from __future__ import annotations

from typing import Any

from protocols.dex.dexfile import DexFile
from protocols.dex.fields import int_field, text_field


def _selection(record: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    # Straight from the rows: the four fields the summary shows, without building the
    # full Selection view (same values as DexFile.selections, at a fraction of the cost).
    head = record[0]
    paid = next((row for row in record if row[0] == "PA2"), ())
    return {
        "selection": text_field(head, 1),
        "price": int_field(head, 2),
        "vends": int_field(paid, 1),
        "sales_value": int_field(paid, 2),
    }


def summarize(dex: DexFile) -> dict[str, Any]:
    """A JSON-ready dict: machine_serial, crc, totals, selections, warnings, then extras."""
    paid = dex.paid_vends
    cash = dex.cash_sales
    cashless = dex.cashless_sales
    currency = dex.currency
    return {
        "machine_serial": dex.machine_serial,
        "crc": dex.crc,
        "totals": {
            "paid_vends_value": paid.value_init if paid else None,
            "paid_vends_count": paid.count_init if paid else None,
            "cash_sales_value": cash.value_init if cash else None,
            "cashless_sales_value": cashless.value_init if cashless else None,
        },
        "selections": [_selection(record) for record in dex.product_records],
        "warnings": list(dex.warnings),
        "decimal_places": currency.decimal_places if currency else None,
        "currency": (currency.alpha or currency.numeric or None) if currency else None,
        "segments": len(dex.rows),
    }
