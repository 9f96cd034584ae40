"""Automated stores on the controller side: ``[[dispenser]]`` units in machine.toml, and
what a settled basket becomes in telemetry (one sale with lines, one e-receipt)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.config import ConfigError, ReceiptsSection, load_config
from controller.outbox import Before, OutboxMapper
from controller.receipts import ReceiptIssuer
from protocols.money import Money
from protocols.telemetry import RefundBody, RefundKind, SaleBody
from protocols.vend import inputs as i
from protocols.vend import outputs as o
from protocols.vend.model import Selection
from protocols.vend.session import Result, VendSession

HEAD = """
[machine]
id = "store-1"
[mdb]
url = "memory://"
"""
SELECTIONS = """
[[selection]]
code = "A1"
product = "Trà xanh 0 độ"
price = 12000
capacity = 10
par = 8
motor = 11
unit = "tower-1"
[[selection]]
code = "B1"
product = "Bánh mì que"
price = 8000
capacity = 6
par = 6
motor = 11
unit = "tower-2"
[[selection]]
code = "B2"
product = "Nước suối"
price = 6000
capacity = 6
par = 6
motor = 12
"""
UNITS = """
[[dispenser]]
name = "tower-1"
url = "memory://"
[[dispenser]]
name = "tower-2"
url = "memory://"
vend_timeout = 30
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "machine.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_units_and_their_selections(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, HEAD + UNITS + SELECTIONS))
    assert [(u.name, u.vend_timeout) for u in cfg.units] == [("tower-1", 15.0), ("tower-2", 30.0)]
    units = {s.code: s.unit for s in cfg.selections()}
    assert units == {"A1": "tower-1", "B1": "tower-2", "B2": "tower-1"}  # B2: the first unit


def test_single_dispenser_table_keeps_the_old_planogram(tmp_path: Path) -> None:
    single = SELECTIONS.replace('unit = "tower-1"\n', "").replace('unit = "tower-2"\n', "")
    single = single.replace("motor = 11\n", "motor = 21\n", 1)  # A1 and B1 shared motor 11
    cfg = load_config(_write(tmp_path, HEAD + '[dispenser]\nurl = "memory://"\n' + single))
    assert [u.name for u in cfg.units] == ["main"]
    # Unit-less selections, exactly as journals written before units existed hold them.
    assert all(s.unit == "" for s in cfg.selections())


@pytest.mark.parametrize(
    ("units", "problem"),
    [
        (UNITS.replace("tower-2", "tower-1"), "dispenser names repeat"),
        (UNITS.replace('name = "tower-2"', 'name = "tower-9"'), "unknown dispensers: tower-2"),
        (
            UNITS.replace('name = "tower-2"', 'name = "bad name"'),
            r"dispenser\[1\]\.name: String should match",
        ),
    ],
)
def test_bad_units_are_named(tmp_path: Path, units: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_config(_write(tmp_path, HEAD + units + SELECTIONS))


def test_the_same_motor_twice_on_one_unit_is_refused(tmp_path: Path) -> None:
    clash = SELECTIONS.replace('unit = "tower-2"', 'unit = "tower-1"')
    with pytest.raises(ConfigError, match="motors used twice: tower-1:11"):
        load_config(_write(tmp_path, HEAD + UNITS + clash))


# --- telemetry and receipts for a settled basket ----------------------------------------

RECEIPTS = ReceiptsSection(
    invoice_symbol="1C26MAB",
    seller_tax_code="0312345678",
    seller_name="Công ty TNHH Máy Bán Hàng",
    seller_address="12 Lê Lợi, Quận 1, TP. Hồ Chí Minh",
    lookup_secret="hex:00112233445566778899aabbccddeeff",
)


def _vnd(n: int) -> Money:
    return Money(n, "VND")


def _session() -> VendSession:
    s = VendSession("VND")
    sels = (
        Selection(code="A1", product="Trà xanh 0 độ", price=_vnd(12000), capacity=10, par=8,
                  motor=11, item_number=1, unit="tower-1"),
        Selection(code="B1", product="Bánh mì que", price=_vnd(8000), capacity=6, par=6,
                  motor=11, item_number=2, unit="tower-2"),
    )  # fmt: skip
    s.apply(i.PlanogramLoaded(currency="VND", selections=sels))
    for sel in sels:
        s.apply(i.StockFilled(code=sel.code, count=5))
    s.apply(i.AcceptorsConfigured(card_readers=(0x10,), refund_readers=(0x10,)))
    return s


def _run(s: VendSession, mapper: OutboxMapper, event: i.VendInput) -> tuple[Result, list[object]]:
    before = Before.of(s)
    out = s.apply(event)
    return out, list(mapper.bodies(event, out, s, before))


def test_card_basket_with_a_failed_item_is_one_sale_one_receipt_and_a_refund() -> None:
    s, mapper = _session(), OutboxMapper("VND")
    s.apply(i.CardSessionBegan(reader=0x10, funds=None))
    s.apply(i.BasketItemAdded(code="A1", quantity=2))
    s.apply(i.BasketItemAdded(code="B1"))
    s.apply(i.CheckoutRequested())
    out, bodies = _run(s, mapper, i.CardVendApproved(reader=0x10, amount=_vnd(32000)))
    units = []
    for delivered in (True, True, False):
        d = next(x for x in out if isinstance(x, o.Dispense))
        units.append(d.unit)
        out, step = _run(s, mapper, i.DispenseFinished(
            vend_id=d.vend_id, delivered=delivered, outcome="ok" if delivered else "jam",
            slot_out_of_service=not delivered))  # fmt: skip
        assert not [b for b in step if isinstance(b, SaleBody | RefundBody)]  # not yet
    assert units == ["tower-1", "tower-1", "tower-2"]
    _, bodies = _run(s, mapper, i.CardVendApproved(reader=0x10, amount=_vnd(8000), negative=True))
    sales = [b for b in bodies if isinstance(b, SaleBody)]
    refunds = [b for b in bodies if isinstance(b, RefundBody)]
    assert len(sales) == 1
    assert sales[0].price == 24000
    assert [(ln.selection, ln.quantity, ln.unit_price) for ln in sales[0].lines or []] == [
        ("A1", 2, 12000)
    ]
    assert [(r.kind, r.amount) for r in refunds] == [(RefundKind.CASHLESS_FAILED_VEND, 8000)]
    issuer = ReceiptIssuer(RECEIPTS, "Asia/Ho_Chi_Minh")
    issued = issuer.issue(sales, datetime(2026, 5, 1, 3, 0, tzinfo=UTC))
    receipt = issued.bodies[0]
    assert isinstance(receipt, SaleBody)
    assert receipt.receipt is not None
    assert [(ln.code, ln.quantity) for ln in receipt.receipt.lines] == [("A1", 2)]
    assert receipt.receipt.total == 24000
