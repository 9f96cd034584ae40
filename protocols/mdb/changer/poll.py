"""Coin changer POLL (0B) answers: a run of one- and two-byte items (mdb.md section 3.4).

The first byte of each item says what it is and how long it is::

    1yyy xxxx  Z2   coins dispensed manually: yyy = count, xxxx = type, Z2 = tube count
    01rr xxxx  Z2   coin deposited: rr = route, xxxx = type, Z2 = coins now in that tube
    001n nnnn       slugs since the last POLL
    0000 ssss       status (table below)

Answers are parsed greedily, item by item; an item that is cut off raises
:class:`DecodeError`. An empty answer (the changer ACKed the POLL) has no items.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.mdb.errors import DecodeError
from protocols.mdb.message import Answer, Message


class Route(enum.IntEnum):
    """Where a deposited coin went (bits 5-4 of the item)."""

    CASH_BOX = 0
    TUBE = 1
    NOT_USED = 2
    REJECTED = 3


class StatusCode(enum.IntEnum):
    """The changer's one-byte status items (spec table, 0x01-0x0D)."""

    ESCROW_REQUEST = 0x01  # the customer pressed the return lever
    PAYOUT_BUSY = 0x02
    NO_CREDIT = 0x03  # validated, but the coin did not reach its destination
    DEFECTIVE_TUBE_SENSOR = 0x04
    DOUBLE_ARRIVAL = 0x05
    ACCEPTOR_UNPLUGGED = 0x06
    TUBE_JAM = 0x07
    ROM_CHECKSUM_ERROR = 0x08
    COIN_ROUTING_ERROR = 0x09
    CHANGER_BUSY = 0x0A
    CHANGER_WAS_RESET = 0x0B
    COIN_JAM = 0x0C
    POSSIBLE_CREDITED_COIN_REMOVAL = 0x0D


def _check(name: str, value: int, top: int) -> None:
    if not 0 <= value <= top:
        raise ValueError(f"{name} must be 0..{top}, got {value}")


class PollItem(Message):
    """One item of a POLL answer."""

    def to_bytes(self) -> bytes:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class CoinsDispensedManually(PollItem):
    """The operator pressed a tube's dispense button; ``tube_count`` is what is left."""

    coin_type: int
    count: int
    tube_count: int

    def __post_init__(self) -> None:
        _check("coin type", self.coin_type, 15)
        _check("manual dispense count", self.count, 7)
        _check("tube count", self.tube_count, 255)

    def to_bytes(self) -> bytes:
        return bytes((0x80 | self.count << 4 | self.coin_type, self.tube_count))


@dataclass(frozen=True, slots=True)
class CoinDeposited(PollItem):
    """A coin went in; only routes TUBE and CASH_BOX earn credit."""

    coin_type: int
    route: Route
    tube_count: int

    def __post_init__(self) -> None:
        _check("coin type", self.coin_type, 15)
        _check("tube count", self.tube_count, 255)

    def to_bytes(self) -> bytes:
        return bytes((0x40 | int(self.route) << 4 | self.coin_type, self.tube_count))


@dataclass(frozen=True, slots=True)
class SlugsDetected(PollItem):
    """Slugs (false coins) seen since the last POLL."""

    count: int

    def __post_init__(self) -> None:
        _check("slug count", self.count, 31)

    def to_bytes(self) -> bytes:
        return bytes((0x20 | self.count,))


@dataclass(frozen=True, slots=True)
class ChangerStatus(PollItem):
    """A status item; codes outside the spec table are kept as the raw number."""

    code: StatusCode | int

    def __post_init__(self) -> None:
        _check("status code", int(self.code), 15)

    def to_bytes(self) -> bytes:
        return bytes((int(self.code),))


def status_code(raw: int) -> StatusCode | int:
    try:
        return StatusCode(raw)
    except ValueError:
        return raw


@dataclass(frozen=True, slots=True)
class PollAnswer(Answer):
    """Everything one POLL answer reported, in order. No items = the changer ACKed."""

    items: tuple[PollItem, ...] = ()

    def to_bytes(self) -> bytes:
        return b"".join(item.to_bytes() for item in self.items)

    def has_status(self, code: StatusCode) -> bool:
        return any(isinstance(i, ChangerStatus) and i.code == code for i in self.items)


def decode_poll(payload: bytes) -> PollAnswer:
    items: list[PollItem] = []
    pos = 0
    while pos < len(payload):
        first = payload[pos]
        if first & 0xC0:  # manual dispense or deposit: two bytes
            if pos + 1 >= len(payload):
                raise DecodeError(f"POLL item {first:#04x} at byte {pos} is cut off")
            tube_count = payload[pos + 1]
            if first & 0x80:
                items.append(CoinsDispensedManually(first & 0x0F, first >> 4 & 0x07, tube_count))
            else:
                items.append(CoinDeposited(first & 0x0F, Route(first >> 4 & 0x03), tube_count))
            pos += 2
        elif first & 0x20:
            items.append(SlugsDetected(first & 0x1F))
            pos += 1
        else:
            items.append(ChangerStatus(status_code(first & 0x0F)))
            pos += 1
    return PollAnswer(tuple(items))
