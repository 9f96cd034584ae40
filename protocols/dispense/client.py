"""The controller's side of one board link: one request in flight, sequence numbers, retries.

The transaction rules are the shared framed client's (:mod:`protocols.framed.client`,
docs/dispenser-protocol.md section 6); this module binds it to the board's messages
and errors and adds the board's QUERY VEND cadence to the timing.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.dispense.messages import CODEC, Request, Response
from protocols.framed import client as framed
from protocols.framed.client import Answered, ClientCounters, NoAnswer

__all__ = [
    "DEFAULT_ADDRESS",
    "Answered",
    "ClientCounters",
    "ClientTiming",
    "DispenserClient",
    "NoAnswer",
]

DEFAULT_ADDRESS = 0x01


@dataclass(frozen=True, slots=True)
class ClientTiming(framed.ClientTiming):
    """Seconds. The board answers within 50 ms; a 40-byte frame takes 42 ms at 9600 baud."""

    poll_interval: float = 0.2  # QUERY VEND cadence while a motor runs


class DispenserClient(framed.FramedClient[Request, Response]):
    """Transaction layer for one board address."""

    def __init__(
        self, address: int = DEFAULT_ADDRESS, timing: ClientTiming | None = None, seq: int = 0
    ) -> None:
        super().__init__(CODEC, address, timing or ClientTiming(), seq)
