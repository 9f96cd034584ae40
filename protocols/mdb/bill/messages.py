"""Bill validator (MDB address 0x30) messages: commands, answers and POLL items, levels 1-2.

Byte layouts follow the MDB/ICP 4.2 tables (reference mdb.md section 4). Commands
are the VMC's blocks without checksum; answers are the peripheral's data without
checksum. The recycler sub-commands (37 03 - 37 0A), file transfer (37 FA - 37 FE)
and diagnostics (37 FF) are carried as :class:`ExpansionRaw` so that traces of a
recycler still decode, but nothing here interprets them.

Reading is tolerant where real validators vary and strict where data is missing:
a SETUP answer that lists fewer than 16 bill types is padded with zero credits,
but a SETUP cut off before its fixed fields, or an identification cut off in its
option bits, raises :class:`DecodeError`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from protocols.mdb.errors import DecodeError
from protocols.mdb.message import (
    Answer,
    Command,
    ascii_field,
    bits,
    mask,
    p16,
    p32,
    pad_ascii,
    u16,
    u32,
)
from protocols.money import Currency, MdbScaling, Money, currency_from_mdb

ADDRESS = 0x30
BILL_TYPES = 16

# Command offsets from the device address (address byte = 0x30 + offset).
RESET, SETUP, SECURITY, POLL, BILL_TYPE, ESCROW, STACKER, EXPANSION = range(8)

# EXPANSION sub-commands we interpret.
SUB_ID_L1 = 0x00
SUB_FEATURE_ENABLE = 0x01
SUB_ID_L2 = 0x02

SETUP_FIXED = 11  # Z1..Z11: everything before the bill type credits
SETUP_LENGTH = SETUP_FIXED + BILL_TYPES
ID_L1_LENGTH = 29
ID_L2_LENGTH = 33

# Level 2 option bits (Z30-Z33 of 37 02) [mem].
FEATURE_FTL = 0x01
FEATURE_RECYCLING = 0x02


def _type_set(numbers: frozenset[int], what: str) -> int:
    bad = sorted(n for n in numbers if not 0 <= n < BILL_TYPES)
    if bad:
        raise ValueError(f"{what}: bill types must be 0..{BILL_TYPES - 1}, got {bad}")
    return mask(numbers)


# --- commands -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plain(Command):
    """A command that is only its address byte."""

    OFFSET: ClassVar[int] = 0

    def to_block(self, address: int) -> bytes:
        return bytes((address + self.OFFSET,))


@dataclass(frozen=True, slots=True)
class Reset(_Plain):
    OFFSET: ClassVar[int] = RESET


@dataclass(frozen=True, slots=True)
class Setup(_Plain):
    OFFSET: ClassVar[int] = SETUP


@dataclass(frozen=True, slots=True)
class Poll(_Plain):
    OFFSET: ClassVar[int] = POLL


@dataclass(frozen=True, slots=True)
class Stacker(_Plain):
    OFFSET: ClassVar[int] = STACKER


@dataclass(frozen=True, slots=True)
class Security(Command):
    """Bill types the validator should check with its high security level."""

    high_security: frozenset[int] = frozenset()

    def to_block(self, address: int) -> bytes:
        return bytes((address + SECURITY,)) + p16(_type_set(self.high_security, "SECURITY"))


@dataclass(frozen=True, slots=True)
class BillType(Command):
    """Which bill types are accepted, and which of them stop in escrow first."""

    enabled: frozenset[int] = frozenset()
    escrow: frozenset[int] = frozenset()

    def to_block(self, address: int) -> bytes:
        enabled = _type_set(self.enabled, "BILL TYPE enable")
        escrow = _type_set(self.escrow, "BILL TYPE escrow")
        return bytes((address + BILL_TYPE,)) + p16(enabled) + p16(escrow)


@dataclass(frozen=True, slots=True)
class Escrow(Command):
    """Stack (True) or return (False) the bill held in escrow."""

    stack: bool

    def to_block(self, address: int) -> bytes:
        return bytes((address + ESCROW, 1 if self.stack else 0))


@dataclass(frozen=True, slots=True)
class IdentificationL1(Command):
    """37 00: identification without option bits."""

    def to_block(self, address: int) -> bytes:
        return bytes((address + EXPANSION, SUB_ID_L1))


@dataclass(frozen=True, slots=True)
class IdentificationL2(Command):
    """37 02: identification with the 32 option bits (level 2)."""

    def to_block(self, address: int) -> bytes:
        return bytes((address + EXPANSION, SUB_ID_L2))


@dataclass(frozen=True, slots=True)
class FeatureEnable(Command):
    """37 01: switch on the level 2 options the VMC will use."""

    features: int = 0

    def to_block(self, address: int) -> bytes:
        if not 0 <= self.features <= 0xFFFFFFFF:
            raise ValueError(f"FEATURE ENABLE: features must fit 32 bits, got {self.features}")
        return bytes((address + EXPANSION, SUB_FEATURE_ENABLE)) + p32(self.features)


@dataclass(frozen=True, slots=True)
class ExpansionRaw(Command):
    """Any other EXPANSION sub-command (recycler, FTL, diagnostics), carried uninterpreted."""

    sub: int
    data: bytes = b""

    def to_block(self, address: int) -> bytes:
        if not 0 <= self.sub <= 0xFF:
            raise ValueError(f"EXPANSION sub-command must be a byte, got {self.sub}")
        return bytes((address + EXPANSION, self.sub)) + self.data


# --- answers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BillSetup(Answer):
    """SETUP (31) answer: level, currency, scaling and the bill type table."""

    level: int
    currency_code: int
    scale_factor: int
    decimal_places: int
    stacker_capacity: int
    high_security: frozenset[int]
    escrow_capable: bool
    bill_credits: tuple[int, ...]

    def to_bytes(self) -> bytes:
        if len(self.bill_credits) > BILL_TYPES:
            raise ValueError(f"at most {BILL_TYPES} bill types, got {len(self.bill_credits)}")
        for field in ("currency_code", "scale_factor", "stacker_capacity"):
            if not 0 <= getattr(self, field) <= 0xFFFF:
                raise ValueError(f"SETUP {field} must fit 16 bits, got {getattr(self, field)}")
        table = bytes(self.bill_credits).ljust(BILL_TYPES, b"\x00")
        return (
            bytes((self.level,))
            + p16(self.currency_code)
            + p16(self.scale_factor)
            + bytes((self.decimal_places,))
            + p16(self.stacker_capacity)
            + p16(_type_set(self.high_security, "SETUP security"))
            + bytes((0xFF if self.escrow_capable else 0x00,))
            + table
        )

    @property
    def currency(self) -> Currency | None:
        """The currency the validator reports, None if its code is unknown to us."""
        return currency_from_mdb(self.currency_code)

    def scaling(self, currency: Currency) -> MdbScaling:
        """How this validator's units become ``currency``; raises MoneyError if impossible."""
        return MdbScaling(self.scale_factor, self.decimal_places, currency)

    def bill_values(self, currency: Currency) -> dict[int, Money]:
        """Value of every bill type the validator knows (credit 0 = no bill of that type)."""
        scaling = self.scaling(currency)
        return {t: scaling.to_money(c) for t, c in enumerate(self.bill_credits) if c}


@dataclass(frozen=True, slots=True)
class StackerAnswer(Answer):
    """STACKER (36) answer: bit 15 = full, bits 14..0 = bills in the stacker."""

    full: bool
    count: int

    def to_bytes(self) -> bytes:
        if not 0 <= self.count <= 0x7FFF:
            raise ValueError(f"stacker count must fit 15 bits, got {self.count}")
        return p16((0x8000 if self.full else 0) | self.count)


@dataclass(frozen=True, slots=True)
class BillIdentification(Answer):
    """EXPANSION 37 00 / 37 02 answer. ``features`` is None for the level 1 form.

    ``software_version`` is the raw two-byte BCD value (0x0123 reads "01.23").
    """

    manufacturer: str
    serial: str
    model: str
    software_version: int
    features: int | None = None

    def to_bytes(self) -> bytes:
        out = (
            pad_ascii(self.manufacturer, 3)
            + pad_ascii(self.serial, 12)
            + pad_ascii(self.model, 12)
            + p16(self.software_version)
        )
        return out if self.features is None else out + p32(self.features)

    @property
    def version_text(self) -> str:
        return f"{self.software_version >> 8:02x}.{self.software_version & 0xFF:02x}"


@dataclass(frozen=True, slots=True)
class RawAnswer(Answer):
    """Data answering a command we only carry (recycler, FTL, diagnostics)."""

    data: bytes

    def to_bytes(self) -> bytes:
        return self.data


# --- POLL items ---------------------------------------------------------------------


class BillRouting(enum.IntEnum):
    """The three ``rrr`` bits of a ``1rrr tttt`` POLL item."""

    STACKED = 0
    ESCROW = 1
    RETURNED = 2
    TO_RECYCLER = 3
    DISABLED_REJECTED = 4
    TO_RECYCLER_MANUAL = 5
    MANUAL_DISPENSE = 6
    RECYCLER_TO_CASHBOX = 7


class StatusCode(enum.IntEnum):
    DEFECTIVE_MOTOR = 0x01
    SENSOR_PROBLEM = 0x02
    VALIDATOR_BUSY = 0x03
    ROM_CHECKSUM_ERROR = 0x04
    VALIDATOR_JAMMED = 0x05
    VALIDATOR_WAS_RESET = 0x06
    BILL_REMOVED = 0x07
    CASH_BOX_OUT_OF_POSITION = 0x08
    VALIDATOR_DISABLED = 0x09
    INVALID_ESCROW_REQUEST = 0x0A
    BILL_REJECTED = 0x0B
    POSSIBLE_CREDITED_BILL_REMOVAL = 0x0C


@dataclass(frozen=True, slots=True)
class PollItem(Answer):
    """One item of a POLL answer; all bill validator items are one byte."""

    def to_bytes(self) -> bytes:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class BillRouted(PollItem):
    bill_type: int
    routing: BillRouting

    def to_bytes(self) -> bytes:
        if not 0 <= self.bill_type < BILL_TYPES:
            raise ValueError(f"bill type must be 0..15, got {self.bill_type}")
        return bytes((0x80 | int(self.routing) << 4 | self.bill_type,))


@dataclass(frozen=True, slots=True)
class DisabledBillAttempts(PollItem):
    """``010x xxxx``: bills offered while acceptance was disabled (counter saturates at 31)."""

    count: int

    def to_bytes(self) -> bytes:
        if not 0 <= self.count <= 0x1F:
            raise ValueError(f"attempt count must be 0..31, got {self.count}")
        return bytes((0x40 | self.count,))


@dataclass(frozen=True, slots=True)
class ValidatorStatus(PollItem):
    """A status byte: a :class:`StatusCode` when we know it, else the raw byte."""

    code: int

    def to_bytes(self) -> bytes:
        return bytes((int(self.code),))


@dataclass(frozen=True, slots=True)
class RecyclerStatus(PollItem):
    """Recycler status 0x21-0x2F, kept raw [mem]."""

    code: int

    def to_bytes(self) -> bytes:
        return bytes((self.code,))


@dataclass(frozen=True, slots=True)
class PollAnswer(Answer):
    items: tuple[PollItem, ...]

    def to_bytes(self) -> bytes:
        return b"".join(item.to_bytes() for item in self.items)

    def has_status(self, code: int) -> bool:
        return any(isinstance(i, ValidatorStatus) and i.code == code for i in self.items)


def decode_item(byte: int) -> PollItem:
    if byte & 0x80:
        return BillRouted(byte & 0x0F, BillRouting(byte >> 4 & 0x07))
    if byte & 0xE0 == 0x40:
        return DisabledBillAttempts(byte & 0x1F)
    if 0x21 <= byte <= 0x2F:
        return RecyclerStatus(byte)
    try:
        return ValidatorStatus(StatusCode(byte))
    except ValueError:
        return ValidatorStatus(byte)


def decode_poll(payload: bytes) -> PollAnswer:
    return PollAnswer(tuple(decode_item(b) for b in payload))


def decode_setup(payload: bytes) -> BillSetup:
    if len(payload) < SETUP_FIXED:
        raise DecodeError(
            f"SETUP answer of {len(payload)} bytes is cut off (needs at least {SETUP_FIXED})"
        )
    table = payload[SETUP_FIXED:SETUP_LENGTH].ljust(BILL_TYPES, b"\x00")
    return BillSetup(
        level=payload[0],
        currency_code=u16(payload, 1),
        scale_factor=u16(payload, 3),
        decimal_places=payload[5],
        stacker_capacity=u16(payload, 6),
        high_security=bits(u16(payload, 8)),
        escrow_capable=payload[10] != 0,
        bill_credits=tuple(table),
    )


def decode_stacker(payload: bytes) -> StackerAnswer:
    if len(payload) < 2:
        raise DecodeError(f"STACKER answer of {len(payload)} bytes is cut off (needs 2)")
    word = u16(payload, 0)
    return StackerAnswer(full=bool(word & 0x8000), count=word & 0x7FFF)


def decode_identification(payload: bytes, with_features: bool) -> BillIdentification:
    if len(payload) < ID_L1_LENGTH:
        raise DecodeError(
            f"identification of {len(payload)} bytes is cut off (needs {ID_L1_LENGTH})"
        )
    features: int | None = None
    if with_features and len(payload) > ID_L1_LENGTH:
        # Some level 1 firmware answers 37 02 with the short form; that is not an error,
        # but option bits that stop half way are.
        if len(payload) < ID_L2_LENGTH:
            raise DecodeError(f"identification option bits cut off ({len(payload)} bytes)")
        features = u32(payload, ID_L1_LENGTH)
    return BillIdentification(
        manufacturer=ascii_field(payload[0:3]),
        serial=ascii_field(payload[3:15]),
        model=ascii_field(payload[15:27]),
        software_version=u16(payload, 27),
        features=features,
    )
