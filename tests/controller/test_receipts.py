"""controller.receipts: e-receipts numbered in the sale's journal transaction, gap-free."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.config import ConfigError, MachineConfig, ReceiptsSection, load_config
from controller.journal import Journal, JournalError
from controller.receipts import META_KEY, ReceiptIssuer
from protocols.einvoice import Payment, Receipt, from_xml, to_xml, verify_lookup_code
from protocols.telemetry import PaymentMethod, SaleBody, SaleLine, StockBody, StockKind
from protocols.vend import inputs as i

SECRET_HEX = "00112233445566778899aabbccddeeff"
SETTINGS = ReceiptsSection(
    invoice_symbol="1C26MAB",
    seller_tax_code="0312345678",
    seller_name="Công ty TNHH Máy Bán Hàng Tự Động",
    seller_address="12 Lê Lợi, Quận 1, TP. Hồ Chí Minh",
    vat_rate="10%",
    vat_rates={"Trà xanh 0 độ": "8%", "B1": "5%"},
    lookup_secret=f"hex:{SECRET_HEX}",
    unit="cái",
)
T0 = datetime(2026, 3, 14, 2, 30, tzinfo=UTC)
EVENT = i.StockFilled(code="A1", count=1)  # the journal row a sale rides on; its kind is moot


def sale(vend_id: int, *, product: str = "Trà xanh 0 độ", code: str = "A1", price: int = 12000,
         method: PaymentMethod = PaymentMethod.CASH) -> SaleBody:  # fmt: skip
    return SaleBody(
        vend_id=vend_id,
        selection=code,
        product=product,
        price=price,
        currency="VND",
        method=method,
    )


class Till:
    """A journal and an issuer wired as Machine.submit wires them; reopened like a reboot."""

    def __init__(self, path: Path, settings: ReceiptsSection | None = SETTINGS) -> None:
        self.path = path
        self.settings = settings
        self.journal: Journal
        self.issuer: ReceiptIssuer
        self.boot()

    def boot(self) -> None:
        self.journal = Journal(self.path)
        self.journal.open()
        self.issuer = ReceiptIssuer(self.settings, "Asia/Ho_Chi_Minh")
        self.issuer.load(self.journal.get_meta(META_KEY))

    def reboot(self) -> None:
        self.journal.close()
        self.boot()

    def sell(self, *bodies: SaleBody | StockBody, at: datetime = T0) -> None:
        issued = self.issuer.issue(bodies, at)
        self.journal.append(EVENT, at, issued.messages, issued.meta)
        self.issuer.confirm(issued)

    def receipts(self) -> list[Receipt]:
        rows = self.journal.db.execute("SELECT kind, body FROM outbox ORDER BY seq").fetchall()
        bodies = [SaleBody.model_validate_json(body) for kind, body in rows if kind == "sale"]
        return [b.receipt for b in bodies if b.receipt is not None]


@pytest.fixture
def till(tmp_path: Path) -> Till:
    return Till(tmp_path / "journal.sqlite")


def test_numbers_are_gap_free_across_restarts(till: Till) -> None:
    till.sell(sale(1))
    till.sell(sale(2))
    till.reboot()
    till.sell(sale(3), sale(4))  # two sales in one transaction (a basket machine)
    till.reboot()
    till.reboot()
    till.sell(sale(5))
    assert [(r.symbol, r.number) for r in till.receipts()] == [("1C26MAB", n) for n in range(1, 6)]


def test_a_sale_that_never_committed_takes_no_number(till: Till) -> None:
    till.sell(sale(1))
    issued = till.issuer.issue([sale(2)], T0)

    def crash(_db: object) -> None:
        raise JournalError("disk full")

    with pytest.raises(JournalError):  # the append fails: the process may die here too
        till.journal.transaction(crash)
    till.reboot()
    till.sell(sale(2))  # recovery journals the sale again
    assert [r.number for r in till.receipts()] == [1, 2]
    assert issued.bodies[0].receipt is not None  # type: ignore[union-attr]
    assert issued.bodies[0].receipt.number == 2  # type: ignore[union-attr]


def test_the_sale_event_carries_a_receipt_that_validates_and_builds_xml(till: Till) -> None:
    till.sell(sale(1), StockBody(kind=StockKind.CHANGE, currency="VND", selections=[]))
    row = till.journal.db.execute("SELECT body FROM outbox WHERE kind='sale'").fetchone()
    body = SaleBody.model_validate(json.loads(row[0]))
    doc = body.receipt
    assert doc is not None
    assert body.receipt_number == "1C26MAB-00000001"
    assert doc.issued_at.isoformat() == "2026-03-14T09:30:00+07:00"  # Vietnam local time
    assert doc.payment is Payment.CASH
    assert [(ln.product, ln.code, ln.unit, ln.quantity, ln.vat_rate) for ln in doc.lines] == [
        ("Trà xanh 0 độ", "A1", "cái", 1, "8%")
    ]
    assert (doc.total, doc.total_vat) == (12000, 889)
    assert from_xml(to_xml(doc)) == doc
    assert verify_lookup_code(bytes.fromhex(SECRET_HEX), doc)


def test_vat_rate_by_product_then_code_then_default(till: Till) -> None:
    till.sell(sale(1), sale(2, product="Bánh mì que", code="B1", price=8000))
    till.sell(sale(3, product="Cà phê sữa", code="A2", price=15000, method=PaymentMethod.CASHLESS))
    rates = [(r.lines[0].vat_rate, r.payment) for r in till.receipts()]
    assert rates == [("8%", Payment.CASH), ("5%", Payment.CASH), ("10%", Payment.CASHLESS)]


def test_basket_lines_become_receipt_lines(till: Till) -> None:
    basket = sale(1, price=27000).model_copy(
        update={
            "lines": [
                SaleLine(selection="A1", product="Trà xanh 0 độ", quantity=1, unit_price=12000),
                SaleLine(selection="A2", product="Cà phê sữa", quantity=1, unit_price=15000),
            ]
        }
    )
    till.sell(basket)
    (doc,) = till.receipts()
    assert [(r.vat_rate, r.before_vat, r.vat) for r in doc.rate_totals] == [
        ("8%", 11111, 889),
        ("10%", 13636, 1364),
    ]
    assert doc.total == 27000


def test_new_year_starts_a_new_series(till: Till) -> None:
    till.sell(sale(1), at=datetime(2026, 12, 31, 16, 59, tzinfo=UTC))  # 23:59 in Hanoi
    till.sell(sale(2), at=datetime(2026, 12, 31, 17, 0, tzinfo=UTC))  # 00:00 on 1 January
    till.reboot()
    till.sell(sale(3), at=datetime(2027, 1, 2, 1, 0, tzinfo=UTC))
    numbered = [(r.symbol, r.number) for r in till.receipts()]
    assert numbered == [("1C26MAB", 1), ("1C27MAB", 1), ("1C27MAB", 2)]


def test_test_vends_free_vends_and_bad_products_take_no_number(till: Till) -> None:
    till.sell(sale(1, method=PaymentMethod.TEST, price=0))
    till.sell(sale(2, price=0))
    till.sell(sale(3, product="Trà\x07"))  # a name no receipt can carry: sale kept, no receipt
    till.sell(sale(4))
    assert [r.number for r in till.receipts()] == [1]
    rows = till.journal.db.execute("SELECT body FROM outbox WHERE kind='sale'").fetchall()
    assert [json.loads(b)["vend_id"] for (b,) in rows] == [1, 2, 3, 4]


def test_without_receipts_config_nothing_is_issued(tmp_path: Path) -> None:
    till = Till(tmp_path / "journal.sqlite", settings=None)
    till.sell(sale(1))
    assert till.receipts() == []
    assert till.journal.get_meta(META_KEY) is None


def test_used_up_series_sells_without_receipt(till: Till) -> None:
    till.journal.transaction(
        lambda db: db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?)", (META_KEY, '{"1C26MAB": 99999999}')
        )
    )
    till.reboot()
    till.sell(sale(1))
    assert till.receipts() == []
    assert json.loads(till.journal.get_meta(META_KEY) or "") == {"1C26MAB": 99999999}


BASE = """
[machine]
id = "vm-0001"
[mdb]
url = "memory://"
[dispenser]
url = "memory://"
[[selection]]
code = "A1"
product = "Trà xanh 0 độ"
price = 12000
capacity = 10
par = 8
motor = 11
"""
RECEIPTS = """
[receipts]
invoice_symbol = "1C26MAB"
seller_tax_code = "0312345678"
seller_name = "Công ty TNHH Máy Bán Hàng"
seller_address = "12 Lê Lợi, Quận 1"
lookup_secret = "hex:00112233445566778899aabbccddeeff"
[receipts.vat_rates]
"Trà xanh 0 độ" = "8%"
"""


def test_config_section_is_optional_and_read(tmp_path: Path) -> None:
    path = tmp_path / "machine.toml"
    path.write_text(BASE, encoding="utf-8")
    assert load_config(path).receipts is None
    path.write_text(BASE + RECEIPTS, encoding="utf-8")
    cfg: MachineConfig = load_config(path)
    assert cfg.receipts is not None
    assert cfg.receipts.vat_rate == "10%"
    assert cfg.receipts.seller.tax_code == "0312345678"


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ('"1C26MAB"', '"1C26TAB"', "receipts.invoice_symbol"),
        ('"0312345678"', '"03123"', "receipts"),
        ('"8%"', '"8"', "receipts.vat_rates"),
        ("hex:00112233445566778899aabbccddeeff", "hex:0011", "receipts.lookup_secret"),
    ],
)
def test_bad_receipts_config_is_refused_by_key(
    tmp_path: Path, old: str, new: str, where: str
) -> None:
    path = tmp_path / "machine.toml"
    path.write_text(BASE + RECEIPTS.replace(old, new), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"  {where}: " in str(err.value)


def test_receipts_need_a_known_timezone(tmp_path: Path) -> None:
    path = tmp_path / "machine.toml"
    text = BASE.replace('id = "vm-0001"', 'id = "vm-0001"\ntimezone = "Mars/Olympus"')
    path.write_text(text + RECEIPTS, encoding="utf-8")
    with pytest.raises(ConfigError, match="timezone"):
        load_config(path)


def test_issued_at_is_whole_seconds_local_time(till: Till) -> None:
    till.sell(sale(1), at=T0 + timedelta(microseconds=123456))
    (doc,) = till.receipts()
    assert doc.issued_at.microsecond == 0
    assert doc.issued_at.utcoffset() == timedelta(hours=7)
