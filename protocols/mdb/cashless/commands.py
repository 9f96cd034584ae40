"""Cashless device commands (reference mdb.md 5.1), the same classes for readers #1 and #2.

``to_block(address)`` takes the reader's base address (0x10 or 0x60) and returns the
address/command byte plus data, without checksum. Commands carrying money are
``wide`` (32-bit) in expanded currency mode; SETUP max/min prices and CASH SALE
also carry the currency code then, so for them ``currency_code is not None`` is
what makes them wide.

Reading a command block does not need to know the mode: the two forms differ in
length, so :func:`read_command` tells them apart by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from protocols.mdb.errors import DecodeError
from protocols.mdb.message import Command, ascii_field, p16, p32, pad_ascii, u16, u32

ADDRESSES = (0x10, 0x60)

# Command offsets from the reader's base address.
RESET, SETUP, POLL, VEND, READER, REVALUE, EXPANSION = 0, 1, 2, 3, 4, 5, 7

UNKNOWN_ITEM = 0xFFFF


def _check(value: int, width_bytes: int, what: str) -> None:
    if not 0 <= value < 1 << (8 * width_bytes):
        raise ValueError(f"{what} {value} does not fit in {width_bytes} bytes")


def _money(value: int, wide: bool) -> bytes:
    return p32(value) if wide else p16(value)


def _check_money(value: int, wide: bool, what: str) -> None:
    _check(value, 4 if wide else 2, what)


def _base(address: int) -> int:
    if address not in ADDRESSES:
        raise ValueError(f"{address:#04x} is not a cashless reader address (0x10 or 0x60)")
    return address


@dataclass(frozen=True, slots=True)
class _Op(Command):
    """A command that is its address byte plus fixed sub-command and data."""

    OFFSET: ClassVar[int] = 0
    SUB: ClassVar[int | None] = None

    def data(self) -> bytes:
        return b""

    def to_block(self, address: int) -> bytes:
        head = bytes((_base(address) + self.OFFSET,))
        sub = b"" if self.SUB is None else bytes((self.SUB,))
        return head + sub + self.data()


@dataclass(frozen=True, slots=True)
class Reset(_Op):
    OFFSET: ClassVar[int] = RESET


@dataclass(frozen=True, slots=True)
class Poll(_Op):
    OFFSET: ClassVar[int] = POLL


@dataclass(frozen=True, slots=True)
class SetupConfig(_Op):
    """SETUP config data: the VMC's level and display; the reader answers READER CONFIG."""

    OFFSET: ClassVar[int] = SETUP
    SUB: ClassVar[int | None] = 0x00
    vmc_level: int
    display_columns: int = 0
    display_rows: int = 0
    display_type: int = 0

    def __post_init__(self) -> None:
        for name in ("vmc_level", "display_columns", "display_rows", "display_type"):
            _check(getattr(self, name), 1, name)

    def data(self) -> bytes:
        return bytes((self.vmc_level, self.display_columns, self.display_rows, self.display_type))


@dataclass(frozen=True, slots=True)
class SetupPrices(_Op):
    """SETUP max/min prices in device units; with a currency code it is the 32-bit form."""

    OFFSET: ClassVar[int] = SETUP
    SUB: ClassVar[int | None] = 0x01
    max_price: int
    min_price: int
    currency_code: int | None = None

    @property
    def wide(self) -> bool:
        return self.currency_code is not None

    def __post_init__(self) -> None:
        _check_money(self.max_price, self.wide, "max_price")
        _check_money(self.min_price, self.wide, "min_price")
        if self.currency_code is not None:
            _check(self.currency_code, 2, "currency_code")

    def data(self) -> bytes:
        out = _money(self.max_price, self.wide) + _money(self.min_price, self.wide)
        return out if self.currency_code is None else out + p16(self.currency_code)


@dataclass(frozen=True, slots=True)
class VendRequest(_Op):
    OFFSET: ClassVar[int] = VEND
    SUB: ClassVar[int | None] = 0x00
    price: int
    item: int
    wide: bool = False

    def __post_init__(self) -> None:
        _check_money(self.price, self.wide, "price")
        _check(self.item, 2, "item")

    def data(self) -> bytes:
        return _money(self.price, self.wide) + p16(self.item)


@dataclass(frozen=True, slots=True)
class VendCancel(_Op):
    OFFSET: ClassVar[int] = VEND
    SUB: ClassVar[int | None] = 0x01


@dataclass(frozen=True, slots=True)
class VendSuccess(_Op):
    OFFSET: ClassVar[int] = VEND
    SUB: ClassVar[int | None] = 0x02
    item: int

    def __post_init__(self) -> None:
        _check(self.item, 2, "item")

    def data(self) -> bytes:
        return p16(self.item)


@dataclass(frozen=True, slots=True)
class VendFailure(_Op):
    OFFSET: ClassVar[int] = VEND
    SUB: ClassVar[int | None] = 0x03


@dataclass(frozen=True, slots=True)
class SessionComplete(_Op):
    OFFSET: ClassVar[int] = VEND
    SUB: ClassVar[int | None] = 0x04


@dataclass(frozen=True, slots=True)
class CashSale(_Op):
    """CASH SALE: a sale paid in cash, reported for the reader's audit data."""

    OFFSET: ClassVar[int] = VEND
    SUB: ClassVar[int | None] = 0x05
    price: int
    item: int
    currency_code: int | None = None

    @property
    def wide(self) -> bool:
        return self.currency_code is not None

    def __post_init__(self) -> None:
        _check_money(self.price, self.wide, "price")
        _check(self.item, 2, "item")
        if self.currency_code is not None:
            _check(self.currency_code, 2, "currency_code")

    def data(self) -> bytes:
        out = _money(self.price, self.wide) + p16(self.item)
        return out if self.currency_code is None else out + p16(self.currency_code)


@dataclass(frozen=True, slots=True)
class NegativeVendRequest(_Op):
    """NEGATIVE VEND REQUEST (Level 3): the customer returns a product for credit."""

    OFFSET: ClassVar[int] = VEND
    SUB: ClassVar[int | None] = 0x06
    price: int
    item: int
    wide: bool = False

    def __post_init__(self) -> None:
        _check_money(self.price, self.wide, "price")
        _check(self.item, 2, "item")

    def data(self) -> bytes:
        return _money(self.price, self.wide) + p16(self.item)


@dataclass(frozen=True, slots=True)
class ReaderDisable(_Op):
    OFFSET: ClassVar[int] = READER
    SUB: ClassVar[int | None] = 0x00


@dataclass(frozen=True, slots=True)
class ReaderEnable(_Op):
    OFFSET: ClassVar[int] = READER
    SUB: ClassVar[int | None] = 0x01


@dataclass(frozen=True, slots=True)
class ReaderCancel(_Op):
    OFFSET: ClassVar[int] = READER
    SUB: ClassVar[int | None] = 0x02


@dataclass(frozen=True, slots=True)
class DataEntryResponse(_Op):
    """DATA ENTRY RESPONSE (Level 3), carried raw."""

    OFFSET: ClassVar[int] = READER
    SUB: ClassVar[int | None] = 0x03
    payload: bytes = b""

    def data(self) -> bytes:
        return self.payload


@dataclass(frozen=True, slots=True)
class RevalueRequest(_Op):
    OFFSET: ClassVar[int] = REVALUE
    SUB: ClassVar[int | None] = 0x00
    amount: int
    wide: bool = False

    def __post_init__(self) -> None:
        _check_money(self.amount, self.wide, "amount")

    def data(self) -> bytes:
        return _money(self.amount, self.wide)


@dataclass(frozen=True, slots=True)
class RevalueLimitRequest(_Op):
    OFFSET: ClassVar[int] = REVALUE
    SUB: ClassVar[int | None] = 0x01


@dataclass(frozen=True, slots=True)
class ExpansionRequestId(_Op):
    """EXPANSION REQUEST ID: the VMC identifies itself; the reader answers PERIPHERAL ID."""

    OFFSET: ClassVar[int] = EXPANSION
    SUB: ClassVar[int | None] = 0x00
    manufacturer: str
    serial: str
    model: str
    software_version: int

    def __post_init__(self) -> None:
        _check(self.software_version, 2, "software_version")

    def data(self) -> bytes:
        return (
            pad_ascii(self.manufacturer, 3)
            + pad_ascii(self.serial, 12)
            + pad_ascii(self.model, 12)
            + p16(self.software_version)
        )


@dataclass(frozen=True, slots=True)
class WriteTimeDate(_Op):
    """EXPANSION WRITE TIME/DATE, carried raw (BCD date and time fields)."""

    OFFSET: ClassVar[int] = EXPANSION
    SUB: ClassVar[int | None] = 0x03
    payload: bytes = b""

    def data(self) -> bytes:
        return self.payload


@dataclass(frozen=True, slots=True)
class OptionalFeatureEnabled(_Op):
    """EXPANSION OPTIONAL FEATURE ENABLED: the Level-3 options the VMC turns on."""

    OFFSET: ClassVar[int] = EXPANSION
    SUB: ClassVar[int | None] = 0x04
    features: int

    def __post_init__(self) -> None:
        _check(self.features, 4, "features")

    def data(self) -> bytes:
        return p32(self.features)


@dataclass(frozen=True, slots=True)
class ExpansionRaw(Command):
    """Any other EXPANSION sub-command (FTL, diagnostics), carried raw."""

    sub: int
    payload: bytes = b""

    def __post_init__(self) -> None:
        _check(self.sub, 1, "sub")
        if self.sub in (0x00, 0x03, 0x04):
            raise ValueError(f"EXPANSION {self.sub:02x} has its own command class")

    def to_block(self, address: int) -> bytes:
        return bytes((_base(address) + EXPANSION, self.sub)) + self.payload


# --- lengths and reading ------------------------------------------------------------

# (offset, sub) -> block length without checksum: (normal, expanded currency mode).
_LENGTHS: dict[tuple[int, int], tuple[int, int]] = {
    (SETUP, 0x00): (6, 6),
    (SETUP, 0x01): (6, 12),
    (VEND, 0x00): (6, 8),
    (VEND, 0x01): (2, 2),
    (VEND, 0x02): (4, 4),
    (VEND, 0x03): (2, 2),
    (VEND, 0x04): (2, 2),
    (VEND, 0x05): (6, 10),
    (VEND, 0x06): (6, 8),
    (READER, 0x00): (2, 2),
    (READER, 0x01): (2, 2),
    (READER, 0x02): (2, 2),
    (READER, 0x03): (10, 10),
    (REVALUE, 0x00): (4, 6),
    (REVALUE, 0x01): (2, 2),
    (EXPANSION, 0x00): (31, 31),
    (EXPANSION, 0x03): (12, 12),
    (EXPANSION, 0x04): (6, 6),
}


def command_length(prefix: bytes, expanded: bool) -> int | None:
    """Block length (without checksum) once ``prefix`` tells it; None if unknown or too short."""
    if not prefix or prefix[0] & 0xF8 not in ADDRESSES:
        return None
    op = prefix[0] & 0x07
    if op in (RESET, POLL):
        return 1
    if len(prefix) < 2:
        return None
    lengths = _LENGTHS.get((op, prefix[1]))
    if lengths is None:
        return None
    return lengths[1] if expanded else lengths[0]


def _need(data: bytes, lengths: tuple[int, ...], what: str) -> None:
    if len(data) not in lengths:
        forms = " or ".join(str(n) for n in lengths)
        raise DecodeError(f"{what} needs {forms} data bytes, got {len(data)}")


def _vend(sub: int, data: bytes) -> Command:
    if sub in (0x00, 0x06):
        _need(data, (4, 6), "VEND REQUEST" if sub == 0 else "NEGATIVE VEND REQUEST")
        wide = len(data) == 6
        price = u32(data, 0) if wide else u16(data, 0)
        item = u16(data, len(data) - 2)
        cls = VendRequest if sub == 0x00 else NegativeVendRequest
        return cls(price, item, wide)
    if sub == 0x02:
        _need(data, (2,), "VEND SUCCESS")
        return VendSuccess(u16(data, 0))
    if sub == 0x05:
        _need(data, (4, 8), "CASH SALE")
        if len(data) == 8:
            return CashSale(u32(data, 0), u16(data, 4), u16(data, 6))
        return CashSale(u16(data, 0), u16(data, 2))
    plain = {0x01: VendCancel, 0x03: VendFailure, 0x04: SessionComplete}
    if sub in plain:
        _need(data, (0,), f"VEND sub-command {sub:02x}")
        return plain[sub]()
    raise DecodeError(f"unknown VEND sub-command {sub:#04x}")


def _setup(sub: int, data: bytes) -> Command:
    if sub == 0x00:
        _need(data, (4,), "SETUP config data")
        return SetupConfig(data[0], data[1], data[2], data[3])
    if sub == 0x01:
        _need(data, (4, 10), "SETUP max/min prices")
        if len(data) == 10:
            return SetupPrices(u32(data, 0), u32(data, 4), u16(data, 8))
        return SetupPrices(u16(data, 0), u16(data, 2))
    raise DecodeError(f"unknown SETUP sub-command {sub:#04x}")


def _reader(sub: int, data: bytes) -> Command:
    if sub == 0x03:
        return DataEntryResponse(data)
    plain = {0x00: ReaderDisable, 0x01: ReaderEnable, 0x02: ReaderCancel}
    if sub not in plain:
        raise DecodeError(f"unknown READER sub-command {sub:#04x}")
    _need(data, (0,), f"READER sub-command {sub:02x}")
    return plain[sub]()


def _revalue(sub: int, data: bytes) -> Command:
    if sub == 0x00:
        _need(data, (2, 4), "REVALUE REQUEST")
        return (
            RevalueRequest(u32(data, 0), wide=True)
            if len(data) == 4
            else RevalueRequest(u16(data, 0))
        )
    if sub == 0x01:
        _need(data, (0,), "REVALUE LIMIT REQUEST")
        return RevalueLimitRequest()
    raise DecodeError(f"unknown REVALUE sub-command {sub:#04x}")


def _expansion(sub: int, data: bytes) -> Command:
    if sub == 0x00:
        _need(data, (29,), "EXPANSION REQUEST ID")
        texts = (ascii_field(data[0:3]), ascii_field(data[3:15]), ascii_field(data[15:27]))
        return ExpansionRequestId(*texts, u16(data, 27))
    if sub == 0x03:
        return WriteTimeDate(data)
    if sub == 0x04:
        _need(data, (4,), "OPTIONAL FEATURE ENABLED")
        return OptionalFeatureEnabled(u32(data, 0))
    return ExpansionRaw(sub, data)


def read_command(block: bytes) -> Command:
    """Address byte + data (no checksum) -> command; raises DecodeError."""
    if not block:
        raise DecodeError("empty command block")
    if block[0] & 0xF8 not in ADDRESSES:
        raise DecodeError(f"address byte {block[0]:#04x} is not a cashless reader's")
    op = block[0] & 0x07
    if op in (RESET, POLL):
        _need(block[1:], (0,), "RESET" if op == RESET else "POLL")
        return Reset() if op == RESET else Poll()
    readers = {
        SETUP: _setup,
        VEND: _vend,
        READER: _reader,
        REVALUE: _revalue,
        EXPANSION: _expansion,
    }
    if op not in readers:
        raise DecodeError(f"command code {block[0]:#04x} is unused for cashless readers")
    if len(block) < 2:
        raise DecodeError(f"command {block[0]:#04x} needs a sub-command byte")
    return readers[op](block[1], block[2:])
