"""A machine's day of stock telemetry, built the way the controller reports it
(controller/outbox.py): every stock movement is a ``stock`` change with its ``delta``;
a service visit sends ``service`` when the door opens and again, with its actions, when
it closes; a basket dispenses item by item and reports one sale with ``lines``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from fleet.audit.periods import date_period, reconcile_period
from fleet.audit.records import (
    CashCount,
    MachineActivity,
    ReconcileConfig,
    SaleMethod,
    SaleRecord,
)
from fleet.audit.report import Category, Discrepancy
from fleet.audit.stock_source import SERVICE_SCHEMA, STOCK_SCHEMA, StoredMessage, stock_history
from protocols.telemetry import (
    SelectionStock,
    ServiceAction,
    ServiceActionEntry,
    ServiceVisitBody,
    StockBody,
    StockKind,
)

DAY = date(2026, 3, 5)
PRICES = {"A1": 12_000, "A2": 11_000, "B1": 15_000}
CONFIG = ReconcileConfig()


@dataclass
class StockDay:
    machine: str = "vm-0001"
    clock: datetime = datetime(2026, 3, 5, 1, 0, tzinfo=UTC)  # 08:00 in Ho Chi Minh City
    seq: int = 0
    shelf: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PRICES, 0))
    messages: list[StoredMessage] = field(default_factory=list)
    sales: list[SaleRecord] = field(default_factory=list)
    counts: list[CashCount] = field(default_factory=list)
    opened: datetime | None = None
    actions: list[ServiceActionEntry] = field(default_factory=list)

    def _tick(self) -> tuple[int, datetime]:
        self.seq += 1
        self.clock += timedelta(minutes=1)
        return self.seq, self.clock

    def _row(self, code: str, delta: int | None = None) -> SelectionStock:
        return SelectionStock(
            code=code, product=f"product {code}", count=self.shelf[code], capacity=10, par=8,
            price=PRICES[code], in_service=True, delta=delta,
        )  # fmt: skip

    def _send(self, schema: str, body: StockBody | ServiceVisitBody) -> None:
        seq, at = self._tick()
        self.messages.append(StoredMessage(seq, at, schema, body.model_dump_json()))

    # -- what the machine reports ----------------------------------------------------

    def snapshot(self) -> None:
        """After boot, a resync or a planogram: every selection the machine has."""
        rows = [self._row(code) for code in self.shelf]
        self._send(
            STOCK_SCHEMA, StockBody(kind=StockKind.SNAPSHOT, currency="VND", selections=rows)
        )

    def change(self, code: str, delta: int) -> None:
        self.shelf[code] += delta
        body = StockBody(kind=StockKind.CHANGE, currency="VND", selections=[self._row(code, delta)])
        self._send(STOCK_SCHEMA, body)

    def open_door(self) -> None:
        self.opened, self.actions = self.clock, []
        self._send(SERVICE_SCHEMA, ServiceVisitBody(opened_at=self.clock, currency="VND"))

    def close_door(self) -> None:
        assert self.opened is not None
        body = ServiceVisitBody(
            opened_at=self.opened, closed_at=self.clock, currency="VND", actions=self.actions
        )
        self._send(SERVICE_SCHEMA, body)
        self.opened = None

    def act(self, action: ServiceAction, code: str, count: int) -> None:
        """A front-panel entry in service mode: the stock change now, the action at close."""
        self.actions.append(ServiceActionEntry(action=action, selection=code, count=count))

    def fill_to(self, code: str, level: int) -> None:
        delta = level - self.shelf[code]
        self.change(code, delta)
        self.act(ServiceAction.FILL, code, delta)

    def remove(self, code: str, units: int) -> None:
        self.change(code, -units)
        self.act(ServiceAction.REMOVE, code, units)

    def sale(self, code: str, method: SaleMethod = SaleMethod.CASH) -> None:
        """One vend: the sale, then its stock change, in one transaction."""
        price = 0 if method is SaleMethod.TEST else PRICES[code]
        seq, at = self._tick()
        self.sales.append(
            SaleRecord(f"{self.machine}:{seq}", self.machine, at, code, price, method)
        )
        self.change(code, -1)
        if method is SaleMethod.TEST:
            self.act(ServiceAction.TEST_VEND, code, 1)

    def basket(self, items: list[str], *, pause_after: int | None = None) -> None:
        """Items dispensed one by one, then the one sale (the last item's change after it).
        ``pause_after``: minutes the machine waits after the first item."""
        for n, code in enumerate(items[:-1]):
            self.change(code, -1)
            if n == 0 and pause_after:
                self.clock += timedelta(minutes=pause_after)
        lines: dict[str, int] = {}
        for code in items:
            lines[code] = lines.get(code, 0) + 1
        total = sum(PRICES[code] for code in items)
        seq, at = self._tick()
        key = f"{self.machine}:{seq}"
        sold = SaleRecord(
            key, self.machine, at, items[0], total, SaleMethod.CASH, lines=tuple(lines.items())
        )
        self.sales.append(sold)
        self.change(items[-1], -1)

    def collect(self, visit: str) -> None:
        """The cash box taken: a collection, so an interval boundary."""
        self.clock += timedelta(seconds=1)
        self.counts.append(CashCount(self.machine, visit, self.clock, 0, 0))

    def wait(self, **delta: float) -> None:
        self.clock += timedelta(**delta)

    # -- what the audit makes of it ------------------------------------------------------

    def mismatches(self, first: date = DAY, last: date = DAY) -> list[Discrepancy]:
        activity = MachineActivity(
            self.machine,
            sales=tuple(self.sales),
            counts=tuple(self.counts),
            stock=tuple(stock_history(self.machine, self.messages)),
        )
        period = date_period(first, last, CONFIG.timezone)
        report = reconcile_period([activity], period, CONFIG)
        return [d for d in report.discrepancies if d.category is Category.INVENTORY_MISMATCH]
