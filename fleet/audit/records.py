"""The inputs of a reconciliation as plain frozen values: no database, no clock.

Every amount is an ``int`` in minor units of the report's one currency; every time is an
aware UTC ``datetime``. :mod:`fleet.audit.source` builds these from the store, tests
build them by hand, and a receipt adapter (see :mod:`fleet.audit.receipts`) fills
:class:`ReceiptRecord` from whatever issues the e-receipts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta


class AuditError(ValueError):
    """Bad audit input or a request the audit store refuses; the message names the problem."""


class SaleMethod(enum.StrEnum):
    CASH = "cash"
    CASHLESS = "cashless"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class SaleRecord:
    """One delivered vend as telemetry reported it (``key`` is ``machine:seq``)."""

    key: str
    machine: str
    at: datetime
    selection: str
    price: int
    method: SaleMethod
    payment_ref: str | None = None
    receipt_number: str | None = None
    cash_to_box: int = 0  # bills plus coins routed to the cash box, from the cash tender
    # A basket (automated store): (selection, units) per line; empty for a single vend.
    lines: tuple[tuple[str, int], ...] = ()
    # The VAT its e-receipt states, when the fleet stored it with the sale (else None).
    receipt_vat: int | None = None
    # Computed once (read several times per sale on the reconciliation's hot path).
    paid: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "paid", self.method is not SaleMethod.TEST and self.price > 0)

    @property
    def units(self) -> tuple[tuple[str, int], ...]:
        """The product that left the machine: (selection, units) per line."""
        return self.lines or ((self.selection, 1),)


class ReceiptKind(enum.StrEnum):
    SALE = "sale"  # documents a sale
    ADJUSTMENT = "adjustment"  # reduces an earlier receipt (refund, correction)
    CANCEL = "cancel"  # cancels an earlier receipt outright


@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    """An issued e-receipt. ``sale_key`` links it to its sale when the issuer knows it;
    otherwise the link is ``number`` = the sale's ``receipt_number``. ``original`` is the
    number of the receipt an adjustment or cancellation refers to. A receipt that was
    never transmitted to the tax authority does not count as issued."""

    key: str
    machine: str
    number: str
    at: datetime
    amount: int
    vat: int
    kind: ReceiptKind = ReceiptKind.SALE
    original: str | None = None
    transmitted: bool = True
    sale_key: str | None = None


class SettlementKind(enum.StrEnum):
    SALE = "sale"
    REFUND = "refund"
    CHARGEBACK = "chargeback"


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """One row of the payment processor's settlement file. ``amount`` and ``fee`` are
    magnitudes (never negative); ``kind`` says which way the money went. ``reference`` is
    the processor's transaction id, the same one the reader reported as ``payment_ref``;
    refunds and chargebacks point at the sale with ``original_reference``."""

    key: str
    machine: str
    at: datetime
    amount: int
    fee: int = 0
    kind: SettlementKind = SettlementKind.SALE
    reference: str | None = None
    original_reference: str | None = None
    settlement_date: date | None = None


@dataclass(frozen=True, slots=True)
class CashCount:
    """A collection as counted: the bag (coin box + bill stacker), the change the driver
    put into the tubes from that cash, and refunds the driver paid out of it by hand."""

    machine: str
    visit: str
    at: datetime
    coins: int
    bills: int
    change_added: int = 0
    refunds_by_hand: int = 0

    @property
    def counted(self) -> int:
        return self.coins + self.bills

    @property
    def accounted(self) -> int:
        """What the bag would hold had nothing been taken out of it on site."""
        return self.counted + self.change_added + self.refunds_by_hand


@dataclass(frozen=True, slots=True)
class SelectionCounters:
    """PA1-PA4 of one selection: price and cumulative paid, test and free vends."""

    code: str
    price: int | None
    paid_count: int | None
    paid_value: int | None
    test_count: int | None
    free_count: int | None


@dataclass(frozen=True, slots=True)
class DexPoint:
    """The cumulative ("since initialisation") counters of one DEX read; None where the
    file leaves a field blank. ``board`` is the control board serial (CB101)."""

    read_id: str
    machine: str
    read_at: datetime
    board: str
    paid_value: int | None
    paid_count: int | None
    cash_value: int | None
    cashless_value: int | None
    test_count: int | None
    free_count: int | None
    cashbox_coins: int | None
    bills_in: int | None
    manual_payout: int | None
    selections: tuple[SelectionCounters, ...] = ()


@dataclass(frozen=True, slots=True)
class TubePayout:
    """Coins taken out of the change tubes by hand (they go into the bag)."""

    machine: str
    at: datetime
    amount: int


@dataclass(frozen=True, slots=True)
class TelemetryGap:
    """Sequence numbers known to be missing, between the events seen ``after`` and
    ``before`` (either may be unknown)."""

    machine: str
    first_seq: int
    last_seq: int
    after: datetime | None
    before: datetime | None


@dataclass(frozen=True, slots=True)
class StockEvent:
    """One stock fact about a selection, ordered by the machine's event ``seq`` (shared
    with sales). ``count``: the absolute number of units the machine reported (with the
    selection's ``price``; ``delta`` is the signed change a change message says led there).
    ``fill`` units put in and ``remove`` units taken out, accounted for at a service visit
    or by a planogram that dropped the selection. ``correct``: a visit's correction of the
    count (signed; a count, or a fill that lowered the level): shown, never explained."""

    machine: str
    seq: int
    at: datetime
    selection: str
    kind: str  # count / fill / remove / correct
    units: int
    price: int = 0
    delta: int | None = None


@dataclass(frozen=True, slots=True)
class Site:
    location: str = "unassigned"
    route: str = "unassigned"


@dataclass(frozen=True, slots=True)
class ReconcileConfig:
    """``vat_rate_bp``: VAT in basis points, prices include it (1000 = 10 %).
    ``read_tolerance``: how far from a collection or period boundary a DEX read may be and
    still mark it. ``lookaround``: how far beyond the period to look for the other half
    of a transaction that straddles its boundary."""

    currency: str = "VND"
    vat_rate_bp: int = 1000
    read_tolerance: timedelta = timedelta(hours=2)
    lookaround: timedelta = timedelta(days=3)
    timezone: str = "Asia/Ho_Chi_Minh"


def vat_due(amount: int, rate_bp: int) -> int:
    """VAT contained in a tax-inclusive ``amount``, rounded half up (integers only)."""
    if amount < 0:
        return -vat_due(-amount, rate_bp)
    denominator = 10_000 + rate_bp
    return (2 * amount * rate_bp + denominator) // (2 * denominator)


@dataclass(frozen=True, slots=True)
class MachineActivity:
    """Everything loaded for one machine around one period, sorted by time."""

    machine: str
    site: Site = field(default_factory=Site)
    sales: tuple[SaleRecord, ...] = ()
    receipts: tuple[ReceiptRecord, ...] = ()
    settlements: tuple[SettlementRecord, ...] = ()
    counts: tuple[CashCount, ...] = ()
    dex: tuple[DexPoint, ...] = ()
    tube_payouts: tuple[TubePayout, ...] = ()
    gaps: tuple[TelemetryGap, ...] = ()
    stock: tuple[StockEvent, ...] = ()
