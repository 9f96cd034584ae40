"""A parsed DEX file: every segment in order, the integrity checks, and typed views.

The reader does the cheap, always-needed work (lines, fields, envelope, G85, SE, product
record grouping); the typed views are built on first use and cached, so a caller that
only wants the selections does not pay for the events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Literal

from protocols.dex.fields import field, int_field, number, parse_datetime, text_field
from protocols.dex.model import (
    CashIn,
    CashlessDevice,
    CashOut,
    CoinTube,
    CurrencyInfo,
    DeviceId,
    Event,
    EventCount,
    Machine,
    ReadInfo,
    Segment,
    Selection,
    Tally,
    TubeFill,
)

CrcStatus = Literal["ok", "mismatch", "absent"]
_PRODUCT = frozenset(f"PA{n}" for n in range(2, 10))


def four_numbers(fields: tuple[str, ...]) -> tuple[int | None, int | None, int | None, int | None]:
    """Fields 1-4 as numbers. The fast path is one C-level int() per field; an empty,
    short, sentinel or garbled segment takes the careful path."""
    try:
        a, b, c, d = map(int, fields[1:5])
    except ValueError:
        pass
    else:
        if max(a, b, c, d) < 99_999_999:
            return a, b, c, d
    return int_field(fields, 1), int_field(fields, 2), int_field(fields, 3), int_field(fields, 4)


def value_first(fields: tuple[str, ...]) -> Tally:
    """VA1/VA2/VA3, CA2, DA2: value init, count init, value reset, count reset."""
    return Tally(*four_numbers(fields))


def count_first(fields: tuple[str, ...]) -> Tally:
    """PA2/PA3/PA4: count init, value init, count reset, value reset."""
    count_init, value_init, count_reset, value_reset = four_numbers(fields)
    return Tally(value_init, count_init, value_reset, count_reset)


def device_id(f: tuple[str, ...] | None) -> DeviceId | None:
    if f is None:
        return None
    return DeviceId(text_field(f, 1), text_field(f, 2), text_field(f, 3))


def selection_from(record: tuple[tuple[str, ...], ...]) -> Selection:
    """One product record: the PA1 that opened it and the PA2..PA8 that followed."""
    head = record[0]
    paid = Tally()
    test: Tally | None = None
    free: Tally | None = None
    for row in record[1:]:
        sid = row[0]
        if sid == "PA2":
            paid = count_first(row)
        elif sid == "PA3":
            test = count_first(row)
        elif sid == "PA4":
            free = count_first(row)
    return Selection(text_field(head, 1), int_field(head, 2), text_field(head, 3), paid, test, free)


@dataclass(frozen=True, eq=False)
class DexFile:
    """The result of :func:`protocols.dex.reader.parse_dex`.

    ``rows`` holds every segment's fields in file order (``row[0]`` is the id, ``row[n]``
    field XX0n), ``ids`` the ids alone and ``line_numbers`` the line each came from;
    ``segments`` pairs them up.
    ``crc`` is "ok" when every G85 matches, "mismatch" when one does not, "absent" when the
    file has none. ``segment_count_declared`` is SE01, ``segment_count_actual`` the count
    of segments from ST through SE. ``prefix``/``suffix`` keep a collector's wrapper.
    """

    rows: tuple[tuple[str, ...], ...]
    ids: tuple[str, ...]
    line_numbers: tuple[int, ...]
    warnings: tuple[str, ...]
    crc: CrcStatus
    crc_declared: int | None
    crc_computed: int | None
    segment_count_declared: int | None
    segment_count_actual: int | None
    envelope: bool
    prefix: str
    suffix: str

    @cached_property
    def segments(self) -> tuple[Segment, ...]:
        """Every segment in file order, verbatim, with its line number."""
        return tuple(
            Segment(row[0], row, line)
            for row, line in zip(self.rows, self.line_numbers, strict=True)
        )

    @cached_property
    def product_records(self) -> tuple[tuple[tuple[str, ...], ...], ...]:
        """PA rows grouped by selection: a PA1 opens a record, the PA2..PA9 after it
        (other segments in between do not matter) belong to it. PA rows before the
        first PA1 belong to none (the reader warns)."""
        records: list[list[tuple[str, ...]]] = []
        for row in self.rows:
            sid = row[0]
            if sid == "PA1":
                records.append([row])
            elif records and sid in _PRODUCT:
                records[-1].append(row)
        return tuple(map(tuple, records))

    @cached_property
    def by_id(self) -> dict[str, tuple[tuple[str, ...], ...]]:
        """Every segment id with its rows in file order."""
        found: dict[str, list[tuple[str, ...]]] = {}
        for row in self.rows:
            found.setdefault(row[0], []).append(row)
        return {key: tuple(value) for key, value in found.items()}

    def first(self, segment_id: str) -> tuple[str, ...] | None:
        """The fields of the first segment with this id (the one that counts when a file
        repeats it), or None."""
        try:
            return self.rows[self.ids.index(segment_id)]
        except ValueError:
            return None

    def _tally(self, segment_id: str) -> Tally | None:
        row = self.first(segment_id)
        return value_first(row) if row is not None else None

    # -- identification -------------------------------------------------------------------

    @cached_property
    def machine(self) -> Machine | None:
        segment = self.first("ID1")
        if segment is None:
            return None
        f = segment
        return Machine(
            text_field(f, 1), text_field(f, 2), text_field(f, 3), text_field(f, 4), text_field(f, 6)
        )

    @property
    def machine_serial(self) -> str | None:
        """ID101, or None when the file has no ID1 or leaves the serial empty."""
        machine = self.machine
        return machine.serial or None if machine is not None else None

    @cached_property
    def currency(self) -> CurrencyInfo | None:
        segment = self.first("ID4")
        if segment is None:
            return None
        f = segment
        return CurrencyInfo(int_field(f, 1), text_field(f, 2), text_field(f, 3))

    @property
    def decimal_places(self) -> int | None:
        currency = self.currency
        return currency.decimal_places if currency is not None else None

    @cached_property
    def machine_time(self) -> datetime | None:
        """ID5: the machine's clock at the time of the read (local time, as the machine says)."""
        segment = self.first("ID5")
        return parse_datetime(field(segment, 1), field(segment, 2)) if segment is not None else None

    @cached_property
    def control_board(self) -> DeviceId | None:
        return device_id(self.first("CB1"))

    # -- totals ------------------------------------------------------------------------

    @cached_property
    def paid_vends(self) -> Tally | None:
        """VA1: value and number of paid vends."""
        return self._tally("VA1")

    @cached_property
    def test_vends(self) -> Tally | None:
        return self._tally("VA2")

    @cached_property
    def free_vends(self) -> Tally | None:
        return self._tally("VA3")

    # -- cash --------------------------------------------------------------------------

    @cached_property
    def changer(self) -> DeviceId | None:
        return device_id(self.first("CA1"))

    @cached_property
    def cash_sales(self) -> Tally | None:
        """CA2: value and number of vends paid in cash."""
        return self._tally("CA2")

    @cached_property
    def cash_in(self) -> CashIn | None:
        segment = self.first("CA3")
        if segment is None:
            return None
        return CashIn(*(int_field(segment, i) for i in range(1, 9)))

    @cached_property
    def cash_out(self) -> CashOut | None:
        segment = self.first("CA4")
        if segment is None:
            return None
        return CashOut(*(int_field(segment, i) for i in range(1, 5)))

    @cached_property
    def tube_fill(self) -> TubeFill | None:
        segment = self.first("CA10")
        if segment is None:
            return None
        return TubeFill(int_field(segment, 1), int_field(segment, 2))

    @cached_property
    def tube_value(self) -> int | None:
        """CA1501: value of the coins in the tubes at the time of the read."""
        segment = self.first("CA15")
        return int_field(segment, 1) if segment is not None else None

    @cached_property
    def tubes(self) -> tuple[CoinTube, ...]:
        """CA17, one per coin tube, in file order."""
        return tuple(
            CoinTube(int_field(s, 1), int_field(s, 2), int_field(s, 3))
            for s in self.by_id.get("CA17", ())
        )

    # -- cashless ----------------------------------------------------------------------

    @cached_property
    def cashless(self) -> tuple[CashlessDevice, ...]:
        """DA (first cashless device) and DB (second), where the file has DA1/DA2 or DB1/DB2."""
        devices = []
        for slot in ("DA", "DB"):
            ident = self.first(slot + "1")
            sales = self.first(slot + "2")
            if ident is None and sales is None:
                continue
            devices.append(
                CashlessDevice(
                    slot,
                    device_id(ident) or DeviceId(),
                    value_first(sales) if sales is not None else Tally(),
                )
            )
        return tuple(devices)

    @cached_property
    def cashless_sales(self) -> Tally | None:
        """DA2: value and number of vends paid by the first cashless device."""
        return self._tally("DA2")

    # -- products ----------------------------------------------------------------------

    @cached_property
    def selections(self) -> tuple[Selection, ...]:
        """One per PA1, in file order, with the PA2/PA3/PA4 that followed it."""
        return tuple(selection_from(record) for record in self.product_records)

    # -- events ------------------------------------------------------------------------

    @cached_property
    def events(self) -> tuple[Event, ...]:
        return tuple(
            Event(
                text_field(s, 1),
                parse_datetime(field(s, 2), field(s, 3)),
                int_field(s, 4),
            )
            for s in self.by_id.get("EA1", ())
        )

    @cached_property
    def event_counts(self) -> tuple[EventCount, ...]:
        return tuple(
            EventCount(
                text_field(s, 1),
                int_field(s, 2),
                int_field(s, 3),
                text_field(s, 4),
            )
            for s in self.by_id.get("EA2", ())
        )

    @cached_property
    def read_info(self) -> ReadInfo | None:
        """EA3: tells whether this read (and the reads before) reset the interim counters."""
        segment = self.first("EA3")
        if segment is None:
            return None
        f = segment
        return ReadInfo(
            number(field(f, 1)),
            parse_datetime(field(f, 2), field(f, 3)),
            text_field(f, 4),
            parse_datetime(field(f, 5), field(f, 6)),
            text_field(f, 7),
        )
