"""Shared shape of every MDB message: frozen dataclasses that describe themselves.

Each device package (``changer``, ``bill``, ``cashless``) defines its commands and
answers as frozen dataclasses deriving from :class:`Message` and exposes a
:class:`DeviceCodec`, which the trace decoder, the simulators and the state
machines use to turn blocks into messages and back.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import ClassVar, Protocol

from protocols.money import Money


class Message:
    """Base of every command, answer and POLL item. Subclasses are frozen dataclasses."""

    NAME: ClassVar[str] = ""

    @property
    def name(self) -> str:
        return self.NAME or type(self).__name__

    def describe(self) -> dict[str, object]:
        """Decoded fields as JSON-friendly values (for traces and ``--json``)."""
        try:
            fields = dataclasses.fields(self)  # type: ignore[arg-type]
        except TypeError:  # not a dataclass
            return {}
        return {f.name: _plain(getattr(self, f.name)) for f in fields if not f.name.startswith("_")}


def _plain(value: object) -> object:
    if isinstance(value, Message):
        return {"message": value.name, **value.describe()}
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Money):
        return {"minor": value.minor, "currency": value.currency}
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(_plain(v) for v in value)  # type: ignore[type-var]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


class Command(Message):
    """A VMC -> peripheral command. ``to_block`` gives address byte + data, no checksum."""

    def to_block(self, address: int) -> bytes:
        raise NotImplementedError


class Answer(Message):
    """A peripheral -> VMC answer. ``to_bytes`` gives the data, no checksum."""

    def to_bytes(self) -> bytes:
        raise NotImplementedError


class DeviceCodec(Protocol):
    """Everything needed to read and write one device class's blocks."""

    name: str
    addresses: tuple[int, ...]

    def command_length(self, prefix: bytes) -> int | None:
        """Full command block length (without checksum) once ``prefix`` tells it."""
        ...

    def decode_command(self, block: bytes) -> Command:
        """Address byte + data -> command; raises DecodeError."""
        ...

    def decode_answer(self, command: Command, payload: bytes) -> Answer:
        """An answer's data, read in the light of the command it answers; raises DecodeError."""
        ...


def u16(data: bytes, offset: int) -> int:
    """Big-endian 16-bit value at ``offset`` (MDB is MSB first)."""
    return (data[offset] << 8) | data[offset + 1]


def u32(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 4], "big")


def p16(value: int) -> bytes:
    return (value & 0xFFFF).to_bytes(2, "big")


def p32(value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, "big")


def ascii_field(data: bytes) -> str:
    """MDB ASCII identification fields: printable text, padding and NULs stripped."""
    return "".join(chr(b) if 0x20 <= b < 0x7F else " " for b in data).strip()


def pad_ascii(text: str, width: int) -> bytes:
    raw = text.encode("ascii", "replace")[:width]
    return raw.ljust(width, b" ")


def bcd_to_int(data: bytes) -> int:
    """Packed BCD (as in MDB software versions) to an int; invalid nibbles read as-is."""
    value = 0
    for b in data:
        value = value * 100 + (b >> 4) * 10 + (b & 0xF)
    return value


def bits(mask: int, width: int = 16) -> frozenset[int]:
    """Bit numbers set in ``mask`` (bit n = coin / bill type n)."""
    return frozenset(n for n in range(width) if mask >> n & 1)


def mask(numbers: frozenset[int] | set[int]) -> int:
    out = 0
    for n in numbers:
        out |= 1 << n
    return out
