"""Cashless device answers: the items a reader puts in a POLL answer (reference mdb.md 5.2).

A reader may queue several items in one answer (JUST RESET then READER CONFIG), so
an answer is a :class:`PollAnswer` holding a tuple of items, read one after another
by their known lengths. Monetary fields are 16-bit, or 32-bit once the Level-3
"32-bit monetary format" option is on; the items that carry money therefore know
whether they are ``wide``.

Tolerance: items whose tail is optional on lower levels (BEGIN SESSION, READER
CONFIG, PERIPHERAL ID, CMD OUT OF SEQUENCE) take what is left of the block up to
their full length and leave missing fields as None. A field cut in half is an
error, not a guess. The price of this tolerance: a short item followed by another
item in the same block would swallow it; readers that send short forms are Level
1 readers, which queue nothing behind those items in practice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from protocols.mdb.errors import DecodeError
from protocols.mdb.message import Answer, ascii_field, p16, p32, pad_ascii, u16, u32

UNKNOWN_16 = 0xFFFF
UNKNOWN_32 = 0xFFFFFFFF

# READER CONFIG Z8 misc options.
OPTION_REFUND = 0x01
OPTION_MULTIVEND = 0x02
OPTION_DISPLAY = 0x04
OPTION_CASH_SALE = 0x08

# PERIPHERAL ID Z31-Z34 / OPTIONAL FEATURE ENABLED Y2-Y5 bits (Level 3).
FEATURE_FTL = 0x01
FEATURE_32BIT = 0x02
FEATURE_MULTI_CURRENCY = 0x04
FEATURE_NEGATIVE_VEND = 0x08
FEATURE_DATA_ENTRY = 0x10
FEATURE_ALWAYS_IDLE = 0x20

# MALFUNCTION code high nibble -> stable fault code.
MALFUNCTION_KINDS = {
    0x0: "media_error",
    0x1: "invalid_media",
    0x2: "tamper",
    0x3: "manufacturer_error",
    0x4: "communications_error",
    0x5: "needs_service",
    0x7: "manufacturer_error",
    0x8: "reader_failure",
    0x9: "communications_error",
    0xA: "media_jammed",
    0xB: "manufacturer_error",
    0xC: "refund_error",
}


def _money_width(wide: bool) -> int:
    return 4 if wide else 2


def _read_money(data: bytes, offset: int, wide: bool) -> int:
    return u32(data, offset) if wide else u16(data, offset)


def _pack_money(value: int, wide: bool) -> bytes:
    return p32(value) if wide else p16(value)


def _check(value: int, width_bytes: int, what: str) -> None:
    if not 0 <= value < 1 << (8 * width_bytes):
        raise ValueError(f"{what} {value} does not fit in {width_bytes} bytes")


class Item(Answer):
    """One item of a POLL answer. ``CODE`` is its first byte."""

    CODE: ClassVar[int] = -1


@dataclass(frozen=True, slots=True)
class _Flag(Item):
    """An item that is only its code byte."""

    def to_bytes(self) -> bytes:
        return bytes((self.CODE,))


@dataclass(frozen=True, slots=True)
class JustReset(_Flag):
    CODE: ClassVar[int] = 0x00


@dataclass(frozen=True, slots=True)
class ReaderConfig(Item):
    """READER CONFIG DATA; ``options`` is None for readers that omit Z8."""

    CODE: ClassVar[int] = 0x01
    level: int
    currency_code: int
    scale_factor: int
    decimal_places: int
    max_response_time: int
    options: int | None = None

    def __post_init__(self) -> None:
        for name in ("level", "scale_factor", "decimal_places", "max_response_time"):
            _check(getattr(self, name), 1, name)
        _check(self.currency_code, 2, "currency_code")
        if self.options is not None:
            _check(self.options, 1, "options")

    def _has(self, bit: int) -> bool:
        return bool((self.options or 0) & bit)

    @property
    def refund_capable(self) -> bool:
        return self._has(OPTION_REFUND)

    @property
    def multivend_capable(self) -> bool:
        return self._has(OPTION_MULTIVEND)

    @property
    def has_display(self) -> bool:
        return self._has(OPTION_DISPLAY)

    @property
    def supports_cash_sale(self) -> bool:
        return self._has(OPTION_CASH_SALE)

    def to_bytes(self) -> bytes:
        head = bytes((self.CODE, self.level)) + p16(self.currency_code)
        tail = bytes((self.scale_factor, self.decimal_places, self.max_response_time))
        return head + tail + (b"" if self.options is None else bytes((self.options,)))


@dataclass(frozen=True, slots=True)
class DisplayRequest(Item):
    """Text the reader wants on the VMC display; it takes the rest of the block."""

    CODE: ClassVar[int] = 0x02
    seconds_tenths: int
    text: str

    def __post_init__(self) -> None:
        _check(self.seconds_tenths, 1, "seconds_tenths")
        try:
            self.text.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError("display text must be single-byte characters") from None

    def to_bytes(self) -> bytes:
        return bytes((self.CODE, self.seconds_tenths)) + self.text.encode("latin-1")


@dataclass(frozen=True, slots=True)
class BeginSession(Item):
    """BEGIN SESSION. ``funds`` None = unknown (0xFFFF). Level-3 fields are optional."""

    CODE: ClassVar[int] = 0x03
    funds: int | None
    media_id: int | None = None
    payment_type: int | None = None
    payment_data: int | None = None
    user_language: int | None = None
    user_currency: int | None = None
    card_options: int | None = None
    wide: bool = False

    _TAIL: ClassVar[tuple[tuple[str, int], ...]] = (
        ("media_id", 4),
        ("payment_type", 1),
        ("payment_data", 2),
        ("user_language", 2),
        ("user_currency", 2),
        ("card_options", 1),
    )

    def __post_init__(self) -> None:
        if self.funds is not None:
            _check(self.funds, _money_width(self.wide), "funds")
        present = [getattr(self, name) is not None for name, _ in self._TAIL]
        if present != sorted(present, reverse=True):
            raise ValueError("BEGIN SESSION fields must be given in order, without gaps")
        for name, size in self._TAIL:
            value = getattr(self, name)
            if value is not None:
                _check(value, size, name)

    def to_bytes(self) -> bytes:
        unknown = UNKNOWN_32 if self.wide else UNKNOWN_16
        out = bytes((self.CODE,)) + _pack_money(
            unknown if self.funds is None else self.funds, self.wide
        )
        for name, size in self._TAIL:
            value = getattr(self, name)
            if value is None:
                break
            out += value.to_bytes(size, "big")
        return out


@dataclass(frozen=True, slots=True)
class SessionCancelRequest(_Flag):
    CODE: ClassVar[int] = 0x04


@dataclass(frozen=True, slots=True)
class VendApproved(Item):
    """VEND APPROVED; ``amount`` None = no amount given (test vend, 0xFFFF)."""

    CODE: ClassVar[int] = 0x05
    amount: int | None
    wide: bool = False

    def __post_init__(self) -> None:
        if self.amount is not None:
            _check(self.amount, _money_width(self.wide), "amount")

    def to_bytes(self) -> bytes:
        unknown = UNKNOWN_32 if self.wide else UNKNOWN_16
        value = unknown if self.amount is None else self.amount
        return bytes((self.CODE,)) + _pack_money(value, self.wide)


@dataclass(frozen=True, slots=True)
class VendDenied(_Flag):
    CODE: ClassVar[int] = 0x06


@dataclass(frozen=True, slots=True)
class EndSession(_Flag):
    CODE: ClassVar[int] = 0x07


@dataclass(frozen=True, slots=True)
class Cancelled(_Flag):
    CODE: ClassVar[int] = 0x08


@dataclass(frozen=True, slots=True)
class PeripheralId(Item):
    """PERIPHERAL ID; ``features`` (Level 3 option bits) is None when the reader omits them."""

    CODE: ClassVar[int] = 0x09
    manufacturer: str
    serial: str
    model: str
    software_version: int
    features: int | None = None

    def __post_init__(self) -> None:
        _check(self.software_version, 2, "software_version")
        if self.features is not None:
            _check(self.features, 4, "features")

    def to_bytes(self) -> bytes:
        out = (
            bytes((self.CODE,))
            + pad_ascii(self.manufacturer, 3)
            + pad_ascii(self.serial, 12)
            + pad_ascii(self.model, 12)
            + p16(self.software_version)
        )
        return out if self.features is None else out + p32(self.features)


@dataclass(frozen=True, slots=True)
class Malfunction(Item):
    CODE: ClassVar[int] = 0x0A
    code: int

    def __post_init__(self) -> None:
        _check(self.code, 1, "code")

    @property
    def kind(self) -> str:
        """Stable name of the error class (high nibble), e.g. ``refund_error``."""
        return MALFUNCTION_KINDS.get(self.code >> 4, "unassigned")

    def to_bytes(self) -> bytes:
        return bytes((self.CODE, self.code))


@dataclass(frozen=True, slots=True)
class CmdOutOfSequence(Item):
    """CMD OUT OF SEQUENCE; Level 2+ readers add their current state as ``status``."""

    CODE: ClassVar[int] = 0x0B
    status: int | None = None

    def __post_init__(self) -> None:
        if self.status is not None:
            _check(self.status, 1, "status")

    def to_bytes(self) -> bytes:
        return bytes((self.CODE,)) + (b"" if self.status is None else bytes((self.status,)))


@dataclass(frozen=True, slots=True)
class RevalueApproved(_Flag):
    CODE: ClassVar[int] = 0x0D


@dataclass(frozen=True, slots=True)
class RevalueDenied(_Flag):
    CODE: ClassVar[int] = 0x0E


@dataclass(frozen=True, slots=True)
class RevalueLimitAmount(Item):
    CODE: ClassVar[int] = 0x0F
    amount: int
    wide: bool = False

    def __post_init__(self) -> None:
        _check(self.amount, _money_width(self.wide), "amount")

    def to_bytes(self) -> bytes:
        return bytes((self.CODE,)) + _pack_money(self.amount, self.wide)


@dataclass(frozen=True, slots=True)
class TimeDateRequest(_Flag):
    CODE: ClassVar[int] = 0x11


@dataclass(frozen=True, slots=True)
class DataEntryRequest(Item):
    """DATA ENTRY REQUEST; ``length_repeat`` is Z2 as sent (length and repeat bits)."""

    CODE: ClassVar[int] = 0x12
    length_repeat: int

    def __post_init__(self) -> None:
        _check(self.length_repeat, 1, "length_repeat")

    def to_bytes(self) -> bytes:
        return bytes((self.CODE, self.length_repeat))


@dataclass(frozen=True, slots=True)
class DataEntryCancel(_Flag):
    CODE: ClassVar[int] = 0x13


@dataclass(frozen=True, slots=True)
class Diagnostic(Item):
    """DIAGNOSTIC RESPONSE: manufacturer-specific bytes, the rest of the block."""

    CODE: ClassVar[int] = 0xFF
    data: bytes = b""

    def to_bytes(self) -> bytes:
        return bytes((self.CODE,)) + self.data


@dataclass(frozen=True, slots=True)
class PollAnswer(Answer):
    """Everything one answer carried, in order. An ACK is an empty answer."""

    items: tuple[Item, ...] = ()

    def to_bytes(self) -> bytes:
        return b"".join(item.to_bytes() for item in self.items)


# --- reading ------------------------------------------------------------------------

READER_CONFIG_LENGTHS = (7, 8)
PERIPHERAL_ID_LENGTHS = (30, 34)


def _take(data: bytes, pos: int, lengths: tuple[int, ...], what: str) -> int:
    """Length of a variable item at ``pos``: the longest allowed form that fits."""
    left = len(data) - pos
    for n in sorted(lengths, reverse=True):
        if n <= left:
            return n
    raise DecodeError(f"{what} cut short: {left} bytes, needs at least {min(lengths)}")


def _begin_session(data: bytes, pos: int, wide: bool) -> tuple[BeginSession, int]:
    width = _money_width(wide)
    if len(data) - pos < 1 + width:
        raise DecodeError(f"BEGIN SESSION cut short: needs {width} bytes of funds")
    funds = _read_money(data, pos + 1, wide)
    end = pos + 1 + width
    values: dict[str, int] = {}
    for name, size in BeginSession._TAIL:  # noqa: SLF001 - the table belongs to this module
        if end == len(data):
            break
        if end + size > len(data):
            raise DecodeError(f"BEGIN SESSION cut inside {name}")
        values[name] = int.from_bytes(data[end : end + size], "big")
        end += size
    unknown = UNKNOWN_32 if wide else UNKNOWN_16
    item = BeginSession(None if funds == unknown else funds, wide=wide, **values)
    return item, end


def _fixed(data: bytes, pos: int, length: int, what: str) -> bytes:
    if len(data) - pos < length:
        raise DecodeError(f"{what} cut short: {len(data) - pos} of {length} bytes")
    return data[pos : pos + length]


_FLAGS: dict[int, type[_Flag]] = {
    cls.CODE: cls
    for cls in (
        JustReset,
        SessionCancelRequest,
        VendDenied,
        EndSession,
        Cancelled,
        RevalueApproved,
        RevalueDenied,
        TimeDateRequest,
        DataEntryCancel,
    )
}


def read_item(data: bytes, pos: int, wide: bool) -> tuple[Item, int]:
    """Decode the item starting at ``data[pos]``; returns it and the position after it."""
    code = data[pos]
    if code in _FLAGS:
        return _FLAGS[code](), pos + 1
    if code == ReaderConfig.CODE:
        n = _take(data, pos, READER_CONFIG_LENGTHS, "READER CONFIG")
        raw = data[pos : pos + n]
        options = raw[7] if n == 8 else None
        return ReaderConfig(raw[1], u16(raw, 2), raw[4], raw[5], raw[6], options), pos + n
    if code == DisplayRequest.CODE:
        raw = _fixed(data, pos, 2, "DISPLAY REQUEST")
        return DisplayRequest(raw[1], data[pos + 2 :].decode("latin-1")), len(data)
    if code == BeginSession.CODE:
        return _begin_session(data, pos, wide)
    if code in (VendApproved.CODE, RevalueLimitAmount.CODE):
        width = _money_width(wide)
        raw = _fixed(data, pos, 1 + width, "VEND APPROVED" if code == 5 else "REVALUE LIMIT")
        value = _read_money(raw, 1, wide)
        if code == RevalueLimitAmount.CODE:
            return RevalueLimitAmount(value, wide), pos + 1 + width
        unknown = UNKNOWN_32 if wide else UNKNOWN_16
        return VendApproved(None if value == unknown else value, wide), pos + 1 + width
    if code == PeripheralId.CODE:
        n = _take(data, pos, PERIPHERAL_ID_LENGTHS, "PERIPHERAL ID")
        raw = data[pos : pos + n]
        features = u32(raw, 30) if n == 34 else None
        texts = (ascii_field(raw[1:4]), ascii_field(raw[4:16]), ascii_field(raw[16:28]))
        return PeripheralId(*texts, u16(raw, 28), features), pos + n
    if code == Malfunction.CODE:
        return Malfunction(_fixed(data, pos, 2, "MALFUNCTION")[1]), pos + 2
    if code == CmdOutOfSequence.CODE:
        # The optional status byte is only taken when it ends the block: a following
        # byte could as well be the next item's code.
        if len(data) - pos == 2:
            return CmdOutOfSequence(data[pos + 1]), pos + 2
        return CmdOutOfSequence(), pos + 1
    if code == DataEntryRequest.CODE:
        return DataEntryRequest(_fixed(data, pos, 2, "DATA ENTRY REQUEST")[1]), pos + 2
    if code == Diagnostic.CODE:
        return Diagnostic(data[pos + 1 :]), len(data)
    raise DecodeError(f"unknown cashless answer item {code:#04x}")


def read_answer(data: bytes, wide: bool) -> PollAnswer:
    """Split a reader's answer into its items; raises DecodeError on anything unknown."""
    items: list[Item] = []
    pos = 0
    while pos < len(data):
        item, pos = read_item(data, pos, wide)
        items.append(item)
    return PollAnswer(tuple(items))
