"""What the changer state machine tells the application (past-tense nouns, values in Money).

Problems the changer reports (jams, sensors) arrive as
:class:`protocols.mdb.events.DeviceFault` with one of the stable codes in
:data:`FAULT_CODES`, so alerting does not need to know changer status numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.mdb.changer.codec import ChangerIdentification, ChangerSetup
from protocols.mdb.changer.poll import StatusCode
from protocols.mdb.events import MdbEvent
from protocols.mdb.message import Message
from protocols.money import Money

FAULT_CODES: dict[StatusCode, str] = {
    StatusCode.NO_CREDIT: "no_credit",
    StatusCode.DEFECTIVE_TUBE_SENSOR: "defective_tube_sensor",
    StatusCode.DOUBLE_ARRIVAL: "double_arrival",
    StatusCode.ACCEPTOR_UNPLUGGED: "acceptor_unplugged",
    StatusCode.TUBE_JAM: "tube_jam",
    StatusCode.ROM_CHECKSUM_ERROR: "rom_checksum_error",
    StatusCode.COIN_ROUTING_ERROR: "coin_routing_error",
    StatusCode.COIN_JAM: "coin_jam",
    StatusCode.POSSIBLE_CREDITED_COIN_REMOVAL: "possible_credited_coin_removal",
}


@dataclass(frozen=True, slots=True)
class ChangerInfo(Message):
    """What :class:`protocols.mdb.events.DeviceOnline` carries for a changer."""

    setup: ChangerSetup
    identification: ChangerIdentification | None
    features_enabled: int


@dataclass(frozen=True, slots=True)
class CoinAccepted(MdbEvent):
    """A coin was credited; ``to_tube`` False means it went to the cash box."""

    coin_type: int
    value: Money
    to_tube: bool
    tube_count: int


@dataclass(frozen=True, slots=True)
class CoinRejected(MdbEvent):
    """A coin was validated but returned to the customer (route 'rejected'); no credit."""

    coin_type: int


@dataclass(frozen=True, slots=True)
class TokenAccepted(MdbEvent):
    """A token (credit byte FF) went in; the application decides what it is worth."""

    coin_type: int
    to_tube: bool


@dataclass(frozen=True, slots=True)
class CoinsDispensedManually(MdbEvent):
    """The operator paid coins out with the tube buttons (not change to a customer)."""

    coin_type: int
    count: int
    value: Money
    tube_count: int


@dataclass(frozen=True, slots=True)
class ReturnLeverPressed(MdbEvent):
    """The customer asked for the money back (escrow request)."""


@dataclass(frozen=True, slots=True)
class SlugsDetected(MdbEvent):
    count: int


@dataclass(frozen=True, slots=True)
class TubesRead(MdbEvent):
    """Fresh TUBE STATUS: coins per type, full tubes, and what the tubes hold in total."""

    counts: tuple[int, ...]
    full: frozenset[int]
    total: Money


@dataclass(frozen=True, slots=True)
class PayoutCompleted(MdbEvent):
    """A payout ended. ``paid`` < ``requested`` when the tubes ran out or it was cut short.

    ``coins[n]`` is the number of coins of type n that left the changer.
    """

    requested: Money
    paid: Money
    coins: tuple[int, ...]

    @property
    def shortfall(self) -> Money:
        return self.requested - self.paid
