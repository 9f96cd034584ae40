"""Field checks and big-endian payload helpers shared by the framed protocols.

Multi-byte fields are big-endian; ``0`` stands for "none" in id fields. Each
protocol raises its own error types, so the checks live on a :class:`FieldRules`
built once per protocol with those types.
"""

from __future__ import annotations

import enum
from typing import TypeVar

from protocols.framed.frames import MAX_PAYLOAD

_E = TypeVar("_E", bound=enum.IntEnum)
_F = TypeVar("_F", bound=enum.IntFlag)


def u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def u32(value: int | None) -> bytes:
    """Four bytes; ``None`` goes on the wire as 0."""
    return (value or 0).to_bytes(4, "big")


def get16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "big")


def get32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "big")


def none_if_zero(value: int) -> int | None:
    return value or None


class FieldRules:
    """Range, enum, flag and length checks raising one protocol's own errors.

    ``field_error`` is raised for a value outside its range (from the wire or from a
    caller building a message), ``decode_error`` for a payload not in the tables.
    """

    def __init__(self, decode_error: type[Exception], field_error: type[Exception]) -> None:
        self.decode_error = decode_error
        self.field_error = field_error

    def check(self, name: str, value: int, low: int, high: int) -> None:
        if not low <= value <= high:
            raise self.field_error(f"{name} {value} outside {low}..{high}")

    def enum(self, kind: type[_E], value: int) -> _E:
        try:
            return kind(value)
        except ValueError:
            raise self.decode_error(f"unknown {kind.__name__} code {value:#04x}") from None

    def flags(self, kind: type[_F], value: int, what: str = "") -> _F:
        """``value`` as ``kind``; a bit no member names is a decode error."""
        known = 0
        for member in kind:
            known |= int(member)
        if value & ~known:
            raise self.decode_error(f"{what or kind.__name__} {value:#04x} has unknown bits")
        return kind(value)

    def expect_len(self, what: str, payload: bytes, length: int) -> None:
        if len(payload) != length:
            raise self.decode_error(f"{what} payload is {len(payload)} bytes, expected {length}")

    def at_least(self, what: str, payload: bytes, length: int) -> None:
        if len(payload) < length:
            raise self.decode_error(
                f"{what} payload is {len(payload)} bytes, at least {length} expected"
            )

    def fits(self, payload: bytes) -> None:
        """A payload no frame could carry is refused before its fields are read."""
        if len(payload) > MAX_PAYLOAD:
            raise self.decode_error(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
