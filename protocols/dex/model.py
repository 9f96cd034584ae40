"""Typed DEX/EVA-DTS values: what the reader's views return and what the writer takes.

Money is an int in the file's own minor units (ID401 gives the decimal places); counts are
ints; a field the file leaves empty, cuts off or marks "not available" is None. Almost every
counter exists twice: since initialisation ("init", cumulative like an odometer, cleared
only when the control board is initialised) and since the last reset ("reset", interim,
cleared by a read with reset).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple


class Segment(NamedTuple):
    """One line of the file, verbatim: ``fields[0]`` is the id, ``fields[n]`` is field XX0n."""

    id: str
    fields: tuple[str, ...]
    line: int

    def get(self, index: int) -> str:
        """Field ``index`` or "" when the segment was cut short."""
        return self.fields[index] if index < len(self.fields) else ""

    @property
    def text(self) -> str:
        return "*".join(self.fields)


@dataclass(frozen=True, slots=True)
class Tally:
    """A value/count pair since initialisation (cumulative) and since the last reset (interim).

    VA1/VA2/VA3, CA2, DA2 write value before count; PA2/PA3/PA4 write count before value.
    The reader and writer know the order per segment; this type does not.
    """

    value_init: int | None = None
    count_init: int | None = None
    value_reset: int | None = None
    count_reset: int | None = None

    def after_reset(self) -> Tally:
        """The same tally after a read with reset: interim cleared, cumulative kept."""
        return Tally(self.value_init, self.count_init, 0, 0)


@dataclass(frozen=True, slots=True)
class DeviceId:
    """CB1, CA1, BA1, DA1, DB1: serial number, model and software revision."""

    serial: str = ""
    model: str = ""
    software: str = ""


@dataclass(frozen=True, slots=True)
class Machine:
    """ID1: the machine's own identification."""

    serial: str = ""
    model: str = ""
    build_standard: str = ""
    location: str = ""
    asset_number: str = ""


@dataclass(frozen=True, slots=True)
class CurrencyInfo:
    """ID4: decimal places of every money field, currency as numeric code and alpha code.

    The numeric code is kept as written: ``1978`` (1 + ISO 4217 978), legacy telephone-style
    ``001``/``039``, or ``FFFF`` for "unknown" all occur.
    """

    decimal_places: int | None = None
    numeric: str = ""
    alpha: str = ""


@dataclass(frozen=True, slots=True)
class CashIn:
    """CA3: value of cash in, to the cash box, to the tubes and bills in; reset then init."""

    value_reset: int | None = None
    cashbox_reset: int | None = None
    tubes_reset: int | None = None
    bills_reset: int | None = None
    value_init: int | None = None
    cashbox_init: int | None = None
    tubes_init: int | None = None
    bills_init: int | None = None

    def after_reset(self) -> CashIn:
        return CashIn(
            0, 0, 0, 0, self.value_init, self.cashbox_init, self.tubes_init, self.bills_init
        )


@dataclass(frozen=True, slots=True)
class CashOut:
    """CA4: value paid out as change and value dispensed by hand (tube emptying)."""

    dispensed_reset: int | None = None
    manual_reset: int | None = None
    dispensed_init: int | None = None
    manual_init: int | None = None

    def after_reset(self) -> CashOut:
        return CashOut(0, 0, self.dispensed_init, self.manual_init)


@dataclass(frozen=True, slots=True)
class TubeFill:
    """CA10: value filled into the coin tubes by hand."""

    filled_reset: int | None = None
    filled_init: int | None = None

    def after_reset(self) -> TubeFill:
        return TubeFill(0, self.filled_init)


@dataclass(frozen=True, slots=True)
class CoinTube:
    """CA17: one coin tube: tube number, coin value and the coins in it now."""

    tube: int | None = None
    coin_value: int | None = None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class CashlessDevice:
    """DA1+DA2 (first cashless device) or DB1+DB2 (second): identity and sales."""

    slot: str = "DA"
    device: DeviceId = field(default_factory=DeviceId)
    sales: Tally = field(default_factory=Tally)


@dataclass(frozen=True, slots=True)
class Selection:
    """PA1 (selection, price, name) with PA2 paid, PA3 test and PA4 free vends.

    ``test`` and ``free`` are None when the file has no PA3/PA4 for the selection.
    """

    selection: str
    price: int | None = None
    name: str = ""
    paid: Tally = field(default_factory=Tally)
    test: Tally | None = None
    free: Tally | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """EA1: an event code (e.g. ``EGS``, ``OCF``), when it happened and its duration."""

    code: str
    occurred_at: datetime | None = None
    duration: int | None = None


@dataclass(frozen=True, slots=True)
class EventCount:
    """EA2: how often an event happened since reset and since initialisation, and if active."""

    code: str
    count_reset: int | None = None
    count_init: int | None = None
    active: str = ""


@dataclass(frozen=True, slots=True)
class ReadInfo:
    """EA3: reads with reset since initialisation, this read and the previous one.

    A read with reset increments ``reads_with_reset``; comparing it between two files tells
    whether the interim counters were cleared in between.
    """

    reads_with_reset: int | None = None
    read_at: datetime | None = None
    terminal: str = ""
    previous_read_at: datetime | None = None
    previous_terminal: str = ""


@dataclass(frozen=True, slots=True)
class AuditCounters:
    """What a controller knows and writes out as a DEX file (see :func:`write_dex`).

    Cumulative (since initialisation): every ``*_init`` field. Interim (since the last read
    with reset): every ``*_reset`` field; :meth:`after_read` clears them. ``tubes`` and the
    device identities are state, not counters.
    """

    machine_serial: str
    machine_model: str = ""
    firmware: str = ""
    location: str = ""
    asset_number: str = ""
    decimal_places: int = 0
    currency_numeric: str = ""
    currency_alpha: str = ""
    control_board: DeviceId = field(default_factory=DeviceId)
    paid_vends: Tally = field(default_factory=Tally)
    test_vends: Tally = field(default_factory=Tally)
    free_vends: Tally = field(default_factory=Tally)
    changer: DeviceId = field(default_factory=DeviceId)
    cash_sales: Tally = field(default_factory=Tally)
    cash_in: CashIn = field(default_factory=CashIn)
    cash_out: CashOut = field(default_factory=CashOut)
    tube_fill: TubeFill = field(default_factory=TubeFill)
    tubes: tuple[CoinTube, ...] = ()
    cashless: tuple[CashlessDevice, ...] = ()
    selections: tuple[Selection, ...] = ()
    events: tuple[Event, ...] = ()
    reads_with_reset: int = 0
    last_read_at: datetime | None = None
    last_read_terminal: str = ""

    @property
    def tube_value(self) -> int:
        """CA15: value of the coins in the tubes now."""
        return sum((t.coin_value or 0) * (t.count or 0) for t in self.tubes)
