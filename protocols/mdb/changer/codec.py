"""Coin changer (address 0x08) commands and answers, Levels 2 and 3 (mdb.md section 3).

Commands know their own bytes (``to_block``); answers are read in the light of the
command they answer (:meth:`ChangerCodec.decode_answer`). Real changers send SETUP
and TUBE STATUS answers shorter than the table when they have fewer than 16 coin
types, so the missing types read as unused / empty; anything else that is short,
long or malformed raises :class:`DecodeError` and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocols.mdb.changer.poll import PollAnswer, decode_poll
from protocols.mdb.errors import DecodeError
from protocols.mdb.message import (
    Answer,
    Command,
    ascii_field,
    bcd_to_int,
    bits,
    mask,
    p16,
    p32,
    pad_ascii,
    u16,
    u32,
)
from protocols.money import Currency, MdbScaling, Money, MoneyError, currency_from_mdb

ADDRESS = 0x08
COIN_TYPES = 16
TOKEN_CREDIT = 0xFF  # a credit byte of FF marks a token, not money [mem]

# Level 3 optional feature bits (IDENTIFICATION Z30-Z33, FEATURE ENABLE Y1-Y4).
FEATURE_ALTERNATIVE_PAYOUT = 1 << 0
FEATURE_EXTENDED_DIAGNOSTIC = 1 << 1
FEATURE_MANUAL_FILL_PAYOUT = 1 << 2
FEATURE_FTL = 1 << 3


def _types(name: str, values: frozenset[int]) -> None:
    bad = sorted(v for v in values if not 0 <= v < COIN_TYPES)
    if bad:
        raise ValueError(f"{name}: coin types must be 0..15, got {bad}")


def _counts(name: str, values: tuple[int, ...]) -> tuple[int, ...]:
    """Per-type byte values, padded to 16 types (short answers mean 'unused')."""
    if len(values) > COIN_TYPES:
        raise ValueError(f"{name}: at most 16 coin types, got {len(values)}")
    if any(not 0 <= v <= 0xFF for v in values):
        raise ValueError(f"{name}: every value must fit one byte, got {values}")
    return tuple(values) + (0,) * (COIN_TYPES - len(values))


# --- commands ------------------------------------------------------------------------


class _Simple(Command):
    """A command that is just the address byte plus its offset."""

    OFFSET = 0

    def to_block(self, address: int) -> bytes:
        return bytes((address | self.OFFSET,))


@dataclass(frozen=True, slots=True)
class Reset(_Simple):
    OFFSET = 0


@dataclass(frozen=True, slots=True)
class Setup(_Simple):
    """SETUP, called STATUS in the spec: level, currency, scaling, coin table."""

    OFFSET = 1


@dataclass(frozen=True, slots=True)
class TubeStatus(_Simple):
    OFFSET = 2


@dataclass(frozen=True, slots=True)
class Poll(_Simple):
    OFFSET = 3


@dataclass(frozen=True, slots=True)
class CoinType(Command):
    """Which coin types to accept and which tubes the operator may dispense by hand."""

    enabled: frozenset[int] = frozenset()
    manual_dispense: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        _types("enabled", self.enabled)
        _types("manual_dispense", self.manual_dispense)

    def to_block(self, address: int) -> bytes:
        return bytes((address | 4,)) + p16(mask(self.enabled)) + p16(mask(self.manual_dispense))


@dataclass(frozen=True, slots=True)
class Dispense(Command):
    """Pay ``count`` (0-15) coins of one type from its tube."""

    coin_type: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.coin_type < COIN_TYPES:
            raise ValueError(f"coin type must be 0..15, got {self.coin_type}")
        if not 0 <= self.count <= 15:
            raise ValueError(f"DISPENSE pays 0..15 coins at a time, got {self.count}")

    def to_block(self, address: int) -> bytes:
        return bytes((address | 5, self.count << 4 | self.coin_type))


class Expansion(Command):
    """EXPANSION (0F) sub-commands, Level 3."""

    SUB = 0

    def data(self) -> bytes:
        return b""

    def to_block(self, address: int) -> bytes:
        return bytes((address | 7, self.SUB)) + self.data()


@dataclass(frozen=True, slots=True)
class Identification(Expansion):
    SUB = 0x00


@dataclass(frozen=True, slots=True)
class FeatureEnable(Expansion):
    features: int = 0

    SUB = 0x01

    def __post_init__(self) -> None:
        if not 0 <= self.features <= 0xFFFFFFFF:
            raise ValueError(f"feature bits must fit 32 bits, got {self.features:#x}")

    def data(self) -> bytes:
        return p32(self.features)


@dataclass(frozen=True, slots=True)
class AlternativePayout(Expansion):
    """Pay ``units`` (scaled, 0-255); the changer chooses the coins."""

    units: int

    SUB = 0x02

    def __post_init__(self) -> None:
        if not 0 <= self.units <= 0xFF:
            raise ValueError(f"ALTERNATIVE PAYOUT takes 0..255 units, got {self.units}")

    def data(self) -> bytes:
        return bytes((self.units,))


@dataclass(frozen=True, slots=True)
class PayoutStatusRequest(Expansion):
    SUB = 0x03


@dataclass(frozen=True, slots=True)
class PayoutValuePoll(Expansion):
    SUB = 0x04


@dataclass(frozen=True, slots=True)
class DiagnosticStatusRequest(Expansion):
    SUB = 0x05


@dataclass(frozen=True, slots=True)
class ManualFillReportRequest(Expansion):
    SUB = 0x06


@dataclass(frozen=True, slots=True)
class ManualPayoutReportRequest(Expansion):
    SUB = 0x07


# --- answers -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Acknowledged(Answer):
    """The changer ACKed a command that carries no answer data."""

    def to_bytes(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class ChangerSetup(Answer):
    """SETUP answer. ``coin_credits[n]`` = value of type n in scaled units (0 = unused)."""

    level: int
    currency_code: int
    scale_factor: int
    decimal_places: int
    routing: frozenset[int] = frozenset()
    coin_credits: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("level", "scale_factor", "decimal_places"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ValueError(f"{name} must fit one byte")
        if not 0 <= self.currency_code <= 0xFFFF:
            raise ValueError("currency code must fit 16 bits")
        _types("routing", self.routing)
        object.__setattr__(self, "coin_credits", _counts("coin credits", self.coin_credits))

    def to_bytes(self) -> bytes:
        head = bytes((self.level,)) + p16(self.currency_code)
        head += bytes((self.scale_factor, self.decimal_places)) + p16(mask(self.routing))
        return head + bytes(self.coin_credits)

    @property
    def currency(self) -> Currency | None:
        return currency_from_mdb(self.currency_code)

    @property
    def coin_types(self) -> frozenset[int]:
        """Types the changer knows (non-zero credit)."""
        return frozenset(n for n, c in enumerate(self.coin_credits) if c)

    def is_token(self, coin_type: int) -> bool:
        return self.coin_credits[coin_type] == TOKEN_CREDIT

    def scaling(self, currency: Currency) -> MdbScaling:
        """This changer's scaling in ``currency``; raises MoneyError on a zero scale factor."""
        return MdbScaling(self.scale_factor, self.decimal_places, currency)

    def coin_value(self, coin_type: int, scaling: MdbScaling) -> Money | None:
        """Money value of a coin type; None if unused, a token, or finer than a minor unit."""
        credit = self.coin_credits[coin_type]
        if credit in (0, TOKEN_CREDIT):
            return None
        try:
            return scaling.to_money(credit)
        except MoneyError:
            return None

    def coin_values(self, scaling: MdbScaling) -> tuple[Money | None, ...]:
        return tuple(self.coin_value(n, scaling) for n in range(COIN_TYPES))


@dataclass(frozen=True, slots=True)
class TubeStatusAnswer(Answer):
    full: frozenset[int] = frozenset()
    counts: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _types("full", self.full)
        object.__setattr__(self, "counts", _counts("tube counts", self.counts))

    def to_bytes(self) -> bytes:
        return p16(mask(self.full)) + bytes(self.counts)

    @property
    def suspect(self) -> frozenset[int]:
        """Tubes flagged full yet counted empty: a sensor or jam problem."""
        return frozenset(n for n in self.full if self.counts[n] == 0)


@dataclass(frozen=True, slots=True)
class ChangerIdentification(Answer):
    """EXPANSION IDENTIFICATION. ``software_version`` is the raw 16-bit BCD value."""

    manufacturer: str
    serial: str
    model: str
    software_version: int
    features: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.software_version <= 0xFFFF:
            raise ValueError("software version must fit 16 bits")
        if not 0 <= self.features <= 0xFFFFFFFF:
            raise ValueError("feature bits must fit 32 bits")

    def to_bytes(self) -> bytes:
        return (
            pad_ascii(self.manufacturer, 3)
            + pad_ascii(self.serial, 12)
            + pad_ascii(self.model, 12)
            + p16(self.software_version)
            + p32(self.features)
        )

    @property
    def version(self) -> int:
        """Software version as a decimal number (BCD 0x0123 -> 123)."""
        return bcd_to_int(p16(self.software_version))

    def offers(self, feature: int) -> bool:
        return bool(self.features & feature)


@dataclass(frozen=True, slots=True)
class _PerType(Answer):
    """An answer that is one count per coin type, padded to 16 types."""

    counts: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", _counts(type(self).__name__, self.counts))

    def to_bytes(self) -> bytes:
        return bytes(self.counts)


@dataclass(frozen=True, slots=True)
class PayoutStatusAnswer(_PerType):
    """Coins of each type paid by the last payout (SEND ALTERNATIVE PAYOUT STATUS)."""


@dataclass(frozen=True, slots=True)
class ManualFillReport(_PerType):
    """Coins of each type the operator filled in by hand."""


@dataclass(frozen=True, slots=True)
class ManualPayoutReport(_PerType):
    """Coins of each type the operator paid out by hand."""


@dataclass(frozen=True, slots=True)
class PayoutValue(Answer):
    """Value paid so far by the running payout, in scaled units."""

    units: int

    def __post_init__(self) -> None:
        if not 0 <= self.units <= 0xFF:
            raise ValueError("payout value must fit one byte")

    def to_bytes(self) -> bytes:
        return bytes((self.units,))


@dataclass(frozen=True, slots=True)
class DiagnosticStatus(Answer):
    """(main, sub) diagnostic code pairs."""

    pairs: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if any(not (0 <= a <= 0xFF and 0 <= b <= 0xFF) for a, b in self.pairs):
            raise ValueError("diagnostic codes must fit one byte each")

    def to_bytes(self) -> bytes:
        return b"".join(bytes(pair) for pair in self.pairs)


# --- the codec -----------------------------------------------------------------------

_SIMPLE: dict[int, type[_Simple]] = {0: Reset, 1: Setup, 2: TubeStatus, 3: Poll}
_EXPANSION_PLAIN: dict[int, type[Expansion]] = {
    0x00: Identification,
    0x03: PayoutStatusRequest,
    0x04: PayoutValuePoll,
    0x05: DiagnosticStatusRequest,
    0x06: ManualFillReportRequest,
    0x07: ManualPayoutReportRequest,
}
_EXPANSION_LENGTH = {0x01: 6, 0x02: 3}  # block lengths of the subs that carry data


def _need(payload: bytes, length: int, what: str, exact: bool = False) -> None:
    if len(payload) < length or (exact and len(payload) != length):
        size = "exactly" if exact else "at least"
        raise DecodeError(f"{what} needs {size} {length} bytes, got {len(payload)}")


def _too_long(payload: bytes, limit: int, what: str) -> None:
    if len(payload) > limit:
        raise DecodeError(f"{what} has {len(payload)} bytes, at most {limit} expected")


class ChangerCodec:
    """Reads and writes coin changer blocks (see :class:`protocols.mdb.message.DeviceCodec`)."""

    name = "changer"
    addresses: tuple[int, ...] = (ADDRESS,)

    def command_length(self, prefix: bytes) -> int | None:
        if not prefix:
            return None
        offset = prefix[0] & 0x07
        if offset == 4:
            return 5
        if offset == 5:
            return 2
        if offset != 7:
            return 1
        if len(prefix) < 2:
            return None
        # Unknown subs (FTL, manufacturer) are guessed at two bytes; the next
        # mode-bit word resynchronises the reader anyway.
        return _EXPANSION_LENGTH.get(prefix[1], 2)

    def decode_command(self, block: bytes) -> Command:
        if not block:
            raise DecodeError("empty command block")
        if block[0] & 0xF8 != ADDRESS:
            raise DecodeError(f"address byte {block[0]:#04x} is not the changer's")
        expected = self.command_length(block[:2])
        if expected is None or len(block) != expected:
            raise DecodeError(f"command {block.hex()} has the wrong length")
        offset = block[0] & 0x07
        if offset in _SIMPLE:
            return _SIMPLE[offset]()
        if offset == 4:
            return CoinType(bits(u16(block, 1)), bits(u16(block, 3)))
        if offset == 5:
            return Dispense(block[1] & 0x0F, block[1] >> 4)
        if offset == 7:
            sub = block[1]
            if sub in _EXPANSION_PLAIN:
                return _EXPANSION_PLAIN[sub]()
            if sub == 0x01:
                return FeatureEnable(u32(block, 2))
            if sub == 0x02:
                return AlternativePayout(block[2])
            raise DecodeError(f"unsupported EXPANSION sub-command {sub:#04x}")
        raise DecodeError(f"changer has no command at offset {offset}")

    def decode_answer(self, command: Command, payload: bytes) -> Answer:
        if isinstance(command, Poll):
            return decode_poll(payload)
        if isinstance(command, Setup):
            _need(payload, 7, "SETUP answer")
            _too_long(payload, 7 + COIN_TYPES, "SETUP answer")
            return ChangerSetup(
                payload[0],
                u16(payload, 1),
                payload[3],
                payload[4],
                bits(u16(payload, 5)),
                tuple(payload[7:]),
            )
        if isinstance(command, TubeStatus):
            _need(payload, 2, "TUBE STATUS answer")
            _too_long(payload, 2 + COIN_TYPES, "TUBE STATUS answer")
            return TubeStatusAnswer(bits(u16(payload, 0)), tuple(payload[2:]))
        if not payload:
            return Acknowledged()
        if isinstance(command, Identification):
            # Some changers omit the four feature bytes; they then offer none.
            if len(payload) != 29:
                _need(payload, 33, "IDENTIFICATION answer", exact=True)
            return ChangerIdentification(
                ascii_field(payload[0:3]),
                ascii_field(payload[3:15]),
                ascii_field(payload[15:27]),
                u16(payload, 27),
                u32(payload, 29) if len(payload) == 33 else 0,
            )
        if isinstance(command, PayoutValuePoll):
            _need(payload, 1, "PAYOUT VALUE answer", exact=True)
            return PayoutValue(payload[0])
        if isinstance(command, DiagnosticStatusRequest):
            if len(payload) % 2 or len(payload) > 16:
                raise DecodeError(
                    f"DIAGNOSTIC STATUS needs 2..16 bytes in pairs, got {payload.hex()}"
                )
            return DiagnosticStatus(
                tuple((payload[i], payload[i + 1]) for i in range(0, len(payload), 2))
            )
        per_type: dict[type[Command], type[_PerType]] = {
            PayoutStatusRequest: PayoutStatusAnswer,
            ManualFillReportRequest: ManualFillReport,
            ManualPayoutReportRequest: ManualPayoutReport,
        }
        kind = per_type.get(type(command))
        if kind is not None:
            _too_long(payload, COIN_TYPES, f"{command.name} answer")
            return kind(tuple(payload))
        raise DecodeError(f"{command.name} is answered with ACK only, got data {payload.hex()}")


CHANGER = ChangerCodec()


__all__ = [
    "ADDRESS",
    "CHANGER",
    "COIN_TYPES",
    "FEATURE_ALTERNATIVE_PAYOUT",
    "FEATURE_EXTENDED_DIAGNOSTIC",
    "FEATURE_FTL",
    "FEATURE_MANUAL_FILL_PAYOUT",
    "TOKEN_CREDIT",
    "Acknowledged",
    "AlternativePayout",
    "ChangerCodec",
    "ChangerIdentification",
    "ChangerSetup",
    "CoinType",
    "DiagnosticStatus",
    "DiagnosticStatusRequest",
    "Dispense",
    "Expansion",
    "FeatureEnable",
    "Identification",
    "ManualFillReport",
    "ManualFillReportRequest",
    "ManualPayoutReport",
    "ManualPayoutReportRequest",
    "PayoutStatusAnswer",
    "PayoutStatusRequest",
    "PayoutValue",
    "PayoutValuePoll",
    "Poll",
    "PollAnswer",
    "Reset",
    "Setup",
    "TubeStatus",
    "TubeStatusAnswer",
]
