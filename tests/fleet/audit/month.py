"""A simulated month of a 20-machine fleet, consistent across every source, with planted
discrepancies: telemetry (through the real ingest), DEX reads (protocols.dex writer), cash
counts, a settlement CSV, and e-receipts that travel with the sales into the transmission
queue (accepted there, except the planted failures; extra documents and corrections are
queued beside ingest by :meth:`Month.queue_receipts`). ``Plant`` records what each plant
must be found as."""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, update

from fleet.audit.records import vat_due
from fleet.einvoice import ReceiptKey, adjust_receipt
from fleet.einvoice.queue import insert_receipt
from fleet.einvoice.sales import outgoing_from_receipt
from fleet.ingest import Received
from fleet.store.einvoice_models import receipt_queue
from protocols.dex import (
    AuditCounters,
    CashIn,
    CashlessDevice,
    DeviceId,
    Selection,
    Tally,
    parse_dex,
    summarize,
    write_dex,
)
from protocols.einvoice import (
    OriginalRef,
    Payment,
    Receipt,
    Relation,
    SaleItem,
    Seller,
    build_receipt,
)
from protocols.money import Money
from protocols.telemetry import (
    BillCount,
    CashTender,
    DexReadBody,
    DexSummary,
    PaymentMethod,
    SaleBody,
    SelectionStock,
    ServiceAction,
    ServiceActionEntry,
    ServiceVisitBody,
    StockBody,
    StockKind,
)
from tests.fleet.conftest import message

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
VAT_BP = 1000
PRICES = {"A1": 10_000, "A2": 15_000, "B1": 12_000, "B2": 20_000}
BILL_FOR = {10_000: 10_000, 15_000: 20_000, 12_000: 20_000, 20_000: 20_000}
MACHINES = [f"vm-{n:04d}" for n in range(1, 21)]
SYMBOL = "1C26MAA"
SELLER = Seller(name="Công ty TNHH Máy Bán Hàng", tax_code="0312345678", address="TP.HCM")
SECRET = b"month-lookup-secret"


def receipt_doc(
    number: int,
    at: datetime,
    amount: int,
    *,
    rate: str = "10%",
    quantity: int = 1,
    original: OriginalRef | None = None,
) -> Receipt:
    return build_receipt(
        symbol=SYMBOL, number=number, issued_at=at.astimezone(ZONE), seller=SELLER,
        items=[SaleItem("product", quantity, Money(amount, "VND"), rate)],
        payment=Payment.CASH, secret=SECRET, original=original,
    )  # fmt: skip


def local(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), ZONE).astimezone(UTC)


@dataclass(frozen=True)
class Plant:
    machine: str
    category: str
    amount: int
    what: str


@dataclass
class _Counters:
    board: str
    cash_value: int = 0
    cash_count: int = 0
    cashless_value: int = 0
    cashless_count: int = 0
    test_count: int = 0
    bills_in: int = 0
    change_paid: int = 0
    paid: dict[str, list[int]] = field(default_factory=lambda: {c: [0, 0] for c in PRICES})
    tests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PRICES, 0))

    def audit(self, machine: str) -> AuditCounters:
        paid_value = self.cash_value + self.cashless_value
        paid_count = self.cash_count + self.cashless_count
        return AuditCounters(
            machine_serial=machine,
            currency_numeric="1704",
            currency_alpha="VND",
            control_board=DeviceId(serial=self.board, model="VF-CB"),
            paid_vends=Tally(paid_value, paid_count),
            test_vends=Tally(0, self.test_count),
            cash_sales=Tally(self.cash_value, self.cash_count),
            cash_in=CashIn(
                value_init=self.bills_in, cashbox_init=0, tubes_init=0, bills_init=self.bills_in
            ),
            cashless=(
                CashlessDevice(slot="DA", sales=Tally(self.cashless_value, self.cashless_count)),
            ),
            selections=tuple(
                Selection(
                    selection=code,
                    price=price,
                    name=f"product {code}",
                    paid=Tally(self.paid[code][1], self.paid[code][0]),
                    test=Tally(0, self.tests[code]),
                )
                for code, price in PRICES.items()
            ),
        )


@dataclass
class Month:
    messages: list[Received] = field(default_factory=list)
    counts: list[dict[str, object]] = field(default_factory=list)
    settlements: list[dict[str, str]] = field(default_factory=list)
    # queued beside ingest: (machine, document, sale seq); adjustments of (machine, number)
    extra_receipts: list[tuple[str, Receipt, int | None]] = field(default_factory=list)
    adjustments: list[tuple[str, int, Receipt]] = field(default_factory=list)
    unsent: set[tuple[str, int]] = field(default_factory=set)  # (machine, number) never sent
    plants: list[Plant] = field(default_factory=list)

    def queue_receipts(self, engine: Engine, now: datetime) -> None:
        """After ingest: queue the extra documents and corrections; the provider accepted
        everything except ``unsent`` (which failed)."""
        q = receipt_queue
        with engine.begin() as conn:
            for machine, doc, seq in self.extra_receipts:
                insert_receipt(
                    conn, outgoing_from_receipt(machine, doc, sale_seq=seq), now, original_id=None
                )
            conn.execute(update(q).values(state="accepted", accepted_at=now))
            for machine, number in self.unsent:
                conn.execute(
                    update(q)
                    .where(q.c.machine_id == machine, q.c.number == str(number))
                    .values(state="failed", accepted_at=None, last_error="gave up")
                )
            for machine, number, doc in self.adjustments:
                key = ReceiptKey(machine, SYMBOL, str(number))
                adjust_receipt(conn, key, outgoing_from_receipt(machine, doc), now)
            conn.execute(
                update(q).where(q.c.kind == "adjustment").values(state="accepted", accepted_at=now)
            )

    def write_settlements(self, path: Path) -> None:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.settlements[0]))
            writer.writeheader()
            writer.writerows(self.settlements)


MAPPING_TOML = """
[columns]
time = "Txn Time"
terminal = "Terminal"
amount = "Amount"
fee = "Fee"
kind = "Type"
reference = "Txn ID"
original_reference = "Orig Txn ID"
settlement_date = "Settled On"

[kinds]
sale = ["PURCHASE"]
refund = ["REFUND"]
chargeback = ["CHARGEBACK"]

[format]
time = "%d/%m/%Y %H:%M:%S"
date = "%d/%m/%Y"
timezone = "Asia/Ho_Chi_Minh"

[terminals]
""" + "\n".join(f'"T{n:03d}" = "{m}"' for n, m in enumerate(MACHINES, start=1))


class _Machine:
    def __init__(self, month: Month, index: int, rng: random.Random) -> None:
        self.month = month
        self.index = index
        self.id = MACHINES[index - 1]
        self.rng = rng
        self.c = _Counters(board=f"CB{index:04d}-A")
        self.seq = 0
        self.vend = 0
        self.bag = 0
        self.lost_seq: int | None = None
        self.shelf = dict.fromkeys(PRICES, 30)  # units in each selection
        self.paid_log: list[tuple[datetime, int]] = []

    # -- telemetry ------------------------------------------------------------------

    def _send(self, body: object, at: datetime, *, lose: bool = False) -> None:
        self.seq += 1
        if lose:
            self.lost_seq = self.seq
            return
        self.month.messages.append(
            message(body, self.seq, self.id, at=at - timedelta(seconds=self.seq))  # type: ignore[arg-type]
        )

    def sale(
        self,
        at: datetime,
        code: str,
        method: PaymentMethod,
        *,
        lose: bool = False,
        settle: bool = True,
        receipt_after: timedelta = timedelta(seconds=1),
        receipt_amount: int | None = None,
        receipt_rate: str = "10%",
    ) -> tuple[str, int, int]:
        """Returns (sale key, receipt number, price); paid sales carry their e-receipt."""
        self.vend += 1
        self.shelf[code] -= 1  # the product left, whether or not the event arrives
        price = 0 if method is PaymentMethod.TEST else PRICES[code]
        number_no = self.index * 1_000_000 + self.vend
        number = f"{SYMBOL}-{number_no:08d}"
        ref = f"{self.id}-{self.vend}" if method is PaymentMethod.CASHLESS else None
        cash = None
        if method is PaymentMethod.CASH:
            bill = BILL_FOR[price]
            cash = CashTender(bills=[BillCount(value=bill, count=1)])
            self.c.cash_value += price
            self.c.cash_count += 1
            self.c.bills_in += bill
            self.c.change_paid += bill - price
            self.bag += bill
        elif method is PaymentMethod.CASHLESS:
            self.c.cashless_value += price
            self.c.cashless_count += 1
        if method is PaymentMethod.TEST:
            self.c.test_count += 1
            self.c.tests[code] += 1
        else:
            self.c.paid[code][0] += 1
            self.c.paid[code][1] += price
        body = SaleBody(
            vend_id=self.vend,
            selection=code,
            product=f"product {code}",
            price=price,
            currency="VND",
            method=method,
            reader=1 if ref else None,
            payment_ref=ref,
            cash=cash,
            receipt_number=number if price else None,
            receipt=receipt_doc(
                number_no, at + receipt_after, price if receipt_amount is None else receipt_amount,
                rate=receipt_rate,
            ) if price else None,
        )  # fmt: skip
        self._send(body, at, lose=lose)
        if price:
            self.paid_log.append((at, price))
        key = f"{self.id}:{self.seq}"
        if ref and settle:
            self.settle(ref, at, price)
        return key, number_no, price

    def extra_receipt(self, number: int, at: datetime, amount: int, seq: int | None) -> None:
        """A second document queued for a sale (``seq``) or for none."""
        self.month.extra_receipts.append((self.id, receipt_doc(number, at, amount), seq))

    def adjust(self, original: int, original_at: datetime, at: datetime, amount: int) -> None:
        """An adjustment receipt taking ``amount`` off receipt ``original``."""
        ref = OriginalRef(
            relation=Relation.ADJUSTMENT, symbol=SYMBOL, number=original,
            issued_on=original_at.astimezone(ZONE).date(),
        )  # fmt: skip
        number = self.index * 1_000_000 + 800_000 + original % 1_000_000
        doc = receipt_doc(number, at, amount, quantity=-1, original=ref)
        self.month.adjustments.append((self.id, original, doc))

    def settle(
        self, ref: str, at: datetime, amount: int, *, kind: str = "PURCHASE", original: str = ""
    ) -> None:
        local_at = at.astimezone(ZONE)
        self.month.settlements.append(
            {
                "Txn Time": local_at.strftime("%d/%m/%Y %H:%M:%S"),
                "Terminal": f"T{self.index:03d}",
                "Amount": str(amount),
                "Fee": str(amount * 2 // 100),
                "Type": kind,
                "Txn ID": ref,
                "Orig Txn ID": original,
                "Settled On": (local_at.date() + timedelta(days=1)).strftime("%d/%m/%Y"),
            }
        )

    def stock_snapshot(self, at: datetime) -> None:
        rows = [
            SelectionStock(
                code=code, product=f"product {code}", count=units, capacity=40, par=30,
                price=PRICES[code], in_service=True,
            )
            for code, units in self.shelf.items()
        ]  # fmt: skip
        self._send(StockBody(kind=StockKind.SNAPSHOT, currency="VND", selections=rows), at)

    def fill(self, at: datetime, code: str, units: int) -> None:
        self.shelf[code] += units
        entry = ServiceActionEntry(action=ServiceAction.FILL, selection=code, count=units)
        self._send(ServiceVisitBody(opened_at=at, closed_at=at, actions=[entry]), at)

    def dex(self, at: datetime, *, reset: bool) -> None:
        raw = write_dex(
            self.c.audit(self.id), read_at=at.astimezone(ZONE).replace(tzinfo=None),
            reset_interim=reset, communication_id="VFL0000001",
        )  # fmt: skip
        summary = DexSummary.model_validate(summarize(parse_dex(raw)))
        self._send(DexReadBody(raw=raw, summary=summary, reset=reset, read_at=at), at)

    def collect(self, at: datetime, visit: str, *, skim: int = 0, extra: int = 0) -> None:
        self.dex(at - timedelta(minutes=1), reset=True)
        change = 50_000 if self.index % 3 == 0 and self.bag >= 50_000 else 0
        by_hand = 10_000 if self.index % 4 == 1 and self.bag >= 60_000 else 0
        bills = self.bag - change - by_hand - skim + extra
        self.month.counts.append(
            {"machine": self.id, "visit": visit, "at": at, "coins": 0, "bills": bills,
             "change_added": change, "refunds_by_hand": by_hand}
        )  # fmt: skip
        self.bag = 0


def _sale_times(rng: random.Random, day: date, busy: list[datetime]) -> list[datetime]:
    times: set[datetime] = set()
    while len(times) < 8:
        moment = local(day, rng.randint(6, 21), rng.randint(0, 59))
        if all(abs(moment - b) > timedelta(minutes=10) for b in busy):
            times.add(moment)
    return sorted(times)


def generate(seed: int = 7) -> Month:
    """Feb 28 to Mar 31 (local) for 20 machines, with one plant of each kind."""
    month = Month()
    rng = random.Random(seed)
    first, last = date(2026, 2, 28), date(2026, 3, 31)
    for index in range(1, 21):
        m = _Machine(month, index, rng)
        collections = {first: local(first, 5)} | {
            date(2026, 3, d + index % 5): local(date(2026, 3, d + index % 5), 14)
            for d in (3, 10, 17, 24)
        }
        boundaries = [local(date(2026, 3, 1), 0, 0, 30), local(date(2026, 4, 1), 0, 0, 30)]
        day = first
        while day <= last:
            if day == date(2026, 3, 1):
                m.dex(boundaries[0], reset=False)
            busy = [*collections.values(), *boundaries]
            sales = _sale_times(rng, day, busy)
            visit_at = collections.get(day)
            done_visit = False
            for n, at in enumerate(sales):
                if visit_at is not None and not done_visit and at > visit_at:
                    _visit(m, visit_at, day)
                    done_visit = True
                code = rng.choice(list(PRICES))
                method = PaymentMethod.CASH if rng.random() < 0.6 else PaymentMethod.CASHLESS
                _plants_at_sale(m, day, n, at, code, method)
            if visit_at is not None and not done_visit:
                _visit(m, visit_at, day)
            _stock_plant(m, day)
            day += timedelta(days=1)
        _last_day_plant(m)
        m.dex(boundaries[1], reset=False)
    return month


def _visit(m: _Machine, at: datetime, day: date) -> None:
    visit = f"{m.id}-{day.isoformat()}"
    skim = 50_000 if m.index == 1 and day.day == 11 else 0
    extra = 20_000 if m.index == 15 and day.day == 17 else 0
    if skim:
        m.month.plants.append(Plant(m.id, "cash_over_short", -skim, "skimmed cash bag"))
    if extra:
        m.month.plants.append(Plant(m.id, "cash_over_short", extra, "cash over"))
    if m.index == 14 and day.day == 21:
        m.c.cashless_value += 5_000  # a vend the board counted that no reader reported
        m.month.plants.append(Plant(m.id, "unexplained", 5_000, "DEX cashless counter ahead"))
    m.collect(at, visit, skim=skim, extra=extra)


def _plants_at_sale(
    m: _Machine, day: date, n: int, at: datetime, code: str, method: PaymentMethod
) -> None:
    add = m.month.plants.append
    special = day == date(2026, 3, 12) and n == 3
    if not special:
        m.sale(at, code, method)
        return
    match m.index:
        case 2:
            _, _, price = m.sale(at, "B1", PaymentMethod.CASH, lose=True)
            add(Plant(m.id, "missing_receipt", -price, "lost telemetry event"))
        case 3:
            _, number, price = m.sale(at, "A2", PaymentMethod.CASHLESS)
            m.month.unsent.add((m.id, number))
            add(Plant(m.id, "missing_receipt", -price, "receipt never transmitted"))
        case 4:
            key, number, price = m.sale(at, "A1", PaymentMethod.CASH)
            seq = int(key.rpartition(":")[2])
            m.extra_receipt(number + 900_000, at + timedelta(seconds=5), price, seq)
            add(Plant(m.id, "duplicate", price, "duplicate receipt"))
        case 5:
            ref = f"{m.id}-{m.vend + 1}"
            _, number, price = m.sale(at, "B2", PaymentMethod.CASHLESS)
            m.settle(f"R-{ref}", at + timedelta(days=3), price, kind="REFUND", original=ref)
            add(Plant(m.id, "refund_without_receipt_adjustment", price, "settlement refund"))
            # A refund that was adjusted on the receipt side: nothing to report.
            ref2 = f"{m.id}-{m.vend + 1}"
            _, number2, price2 = m.sale(at + timedelta(minutes=1), "A1", PaymentMethod.CASHLESS)
            m.settle(f"R-{ref2}", at + timedelta(days=2), price2, kind="REFUND", original=ref2)
            m.adjust(number2, at, at + timedelta(days=2, seconds=5), price2)
        case 7:
            for k in range(3):
                m.sale(at + timedelta(seconds=20 * k), "A2", PaymentMethod.TEST)
            add(Plant(m.id, "test_or_free_vends", -3 * PRICES["A2"], "test vends"))
        case 9:
            m.sale(at, code, method)
            m.extra_receipt(9_999_001, at + timedelta(minutes=2), 15_000, None)
            add(Plant(m.id, "receipt_without_sale", 15_000, "receipt for a failed vend"))
        case 10:
            _, _, price = m.sale(at, "B1", PaymentMethod.CASH, receipt_amount=10_000)
            add(Plant(m.id, "amount_mismatch", 10_000 - price, "receipt amount wrong"))
        case 11:
            # VAT at 8 % on a receipt where 10 % is due: the document adds up, the rate is wrong
            _, _, price = m.sale(at, "B2", PaymentMethod.CASH, receipt_rate="8%")
            wrong = receipt_doc(1, at, price, rate="8%").total_vat
            add(Plant(m.id, "vat_mismatch", wrong - vat_due(price, VAT_BP), "receipt VAT wrong"))
        case 12:
            _, _, price = m.sale(at, "A2", PaymentMethod.CASHLESS, settle=False)
            add(Plant(m.id, "unsettled_or_unknown_cashless", -price, "never settled"))
        case 13:
            m.sale(at, code, method)
            m.settle("X-UNKNOWN-1", at + timedelta(minutes=3), 20_000)
            add(Plant(m.id, "unsettled_or_unknown_cashless", 20_000, "settled, no sale"))
        case 6:
            m.sale(at, code, method)
            _board_swap(m, at)
        case _:
            m.sale(at, code, method)


def _board_swap(m: _Machine, at: datetime) -> None:
    # A new control board: every cumulative counter starts again from zero. The DEX window
    # that contains the swap loses the sales before it (since the collection before).
    last_read_at = local(date(2026, 3, 10 + m.index % 5), 14) - timedelta(minutes=1)
    lost = sum(price for sold_at, price in m.paid_log if last_read_at <= sold_at <= at)
    m.c = _Counters(board=f"CB{m.index:04d}-B")
    m.month.plants.append(Plant(m.id, "counter_reset_or_board_swap", -lost, "board swap"))


def _stock_plant(m: _Machine, day: date) -> None:
    """Machine 16 reports its stock on March 5 and 9 with a fill between (explained) and
    two units of A1 gone without a sale (not explained)."""
    if m.index != 16 or day.month != 3 or day.day not in {5, 7, 8, 9}:
        return
    at = local(day, 22)
    if day.day in {5, 9}:
        m.stock_snapshot(at)
    elif day.day == 7:
        m.fill(at, "A1", 5)
    else:
        m.shelf["A1"] -= 2
        m.month.plants.append(
            Plant(m.id, "inventory_mismatch", -2 * PRICES["A1"], "product removed without a sale")
        )


def _last_day_plant(m: _Machine) -> None:
    if m.index != 8:
        return
    at = local(date(2026, 3, 31), 23, 59, 59)
    _, _, price = m.sale(
        at, "B1", PaymentMethod.CASHLESS, settle=False, receipt_after=timedelta(seconds=2)
    )
    m.settle(f"{m.id}-{m.vend}", at + timedelta(seconds=3), price)
    m.month.plants.append(Plant(m.id, "timing", -price, "sale at 23:59:59 on the last day"))


def by_machine(plants: list[Plant]) -> dict[str, list[Plant]]:
    found: dict[str, list[Plant]] = defaultdict(list)
    for plant in plants:
        found[plant.machine].append(plant)
    return found
