"""The controller's side of one cabinet link: one request in flight, sequence numbers, retries.

The shared framed client (:mod:`protocols.framed.client`) bound to the cabinet's
messages and errors. A retry resends the identical frame with the same SEQ; every
request is idempotent on the cabinet (UNLOCK and LOCK by session id, READ EVENTS by
acknowledged sequence number, the rest by nature). An answer counts only if it
carries our address, the SEQ in flight and the code answering our request.
"""

from __future__ import annotations

from protocols.cabinet.codec import CODEC
from protocols.cabinet.messages import Request, Response
from protocols.framed.client import (
    Answered,
    ClientCounters,
    ClientTiming,
    FramedClient,
    NoAnswer,
)

__all__ = [
    "DEFAULT_ADDRESS",
    "Answered",
    "CabinetClient",
    "ClientCounters",
    "ClientTiming",
    "NoAnswer",
]

DEFAULT_ADDRESS = 0x20  # apart from the dispensing boards' 0x01.. if both share a bus


class CabinetClient(FramedClient[Request, Response]):
    """Transaction layer for one cabinet address."""

    def __init__(
        self, address: int = DEFAULT_ADDRESS, timing: ClientTiming | None = None, seq: int = 0
    ) -> None:
        super().__init__(CODEC, address, timing, seq)
