"""A machine with ``[receipts]``: cash sales leave the outbox carrying consecutive e-receipts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocols.einvoice import Receipt, from_xml, to_xml, verify_lookup_code
from protocols.telemetry import SaleBody
from tests.e2e.rig import MachineRig

pytestmark = [pytest.mark.e2e, pytest.mark.pty]

COIN_5000 = 4
SECRET_HEX = "00112233445566778899aabbccddeeff"
RECEIPTS = f"""
[receipts]
invoice_symbol = "1C26MVA"
seller_tax_code = "0312345678"
seller_name = "Công ty TNHH Máy Bán Hàng Tự Động Sài Gòn"
seller_address = "12 Lê Lợi, Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh"
vat_rate = "8%"
lookup_secret = "hex:{SECRET_HEX}"
"""


class ReceiptRig(MachineRig):
    def write_config(self) -> None:
        super().write_config()
        with self.config.open("a", encoding="utf-8") as f:
            f.write(RECEIPTS)

    def sales(self) -> list[SaleBody]:
        db = sqlite3.connect(f"file:{self.folder / 'data' / 'journal.sqlite'}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT body FROM outbox WHERE kind='sale' ORDER BY seq").fetchall()
        finally:
            db.close()
        return [SaleBody.model_validate_json(body) for (body,) in rows]

    def buy_a1_with_cash(self) -> None:
        before = len(self.sales())
        for _ in range(3):
            self.mdb.call("changer", "insert_coin", coin_type=COIN_5000)
        self.wait_for(lambda: self.status()["display"]["credit"] == 15000, message="credit")
        assert self.panel("select", code="A1")["ok"]
        self.wait_for(lambda: len(self.sales()) == before + 1, message="sale journaled")
        self.wait_idle()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[ReceiptRig]:
    r = ReceiptRig(tmp_path)
    try:
        r.start_simulators()
        r.start_machine()
        r.wait_devices_ready()
        r.fill_all()
        yield r
    finally:
        r.stop_all()


def _receipt(sale: SaleBody) -> Receipt:
    assert sale.receipt is not None
    return sale.receipt


def test_cash_sales_carry_consecutive_receipts_also_after_a_kill(rig: ReceiptRig) -> None:
    rig.buy_a1_with_cash()
    rig.buy_a1_with_cash()
    rig.kill_machine()  # SIGKILL: the numbers taken so far must stay taken
    rig.start_machine()
    rig.wait_devices_ready()
    rig.wait_accepting()
    rig.buy_a1_with_cash()
    docs = [_receipt(s) for s in rig.sales()]
    assert [d.number for d in docs] == [1, 2, 3]
    assert {d.symbol[:2] + d.symbol[4:] for d in docs} == {"1CMVA"}  # year follows the date
    for sale, doc in zip(rig.sales(), docs, strict=True):
        assert sale.receipt_number == f"{doc.symbol}-{doc.number:08d}"
        assert doc.total == sale.price == 12000
        assert (doc.total_before_vat, doc.total_vat) == (11111, 889)
        assert doc.lines[0].product == "Trà xanh 0 độ"
        assert verify_lookup_code(bytes.fromhex(SECRET_HEX), doc)
        xml = to_xml(doc)
        assert "Trà xanh 0 độ".encode() in xml
        assert from_xml(xml) == doc
