"""The controller's side of one cabinet link: one request in flight, sequence numbers, retries.

Sans-I/O, like :mod:`protocols.dispense.client`: the driver writes what
:meth:`CabinetClient.send` returns, feeds what it reads to
:meth:`CabinetClient.receive` and calls :meth:`CabinetClient.on_timeout` once
:attr:`CabinetClient.deadline` passes. A retry resends the identical frame with the
same SEQ; every request is idempotent on the cabinet (UNLOCK and LOCK by session id,
READ EVENTS by acknowledged sequence number, the rest by nature). An answer counts
only if it carries our address, the SEQ in flight and the code answering our request.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.cabinet.codec import decode_response, encode_request, response_code
from protocols.cabinet.errors import ClientError, DecodeError
from protocols.cabinet.messages import ErrorReply, Request, Response
from protocols.dispense.frames import RESPONSE_BIT, Frame, FrameDecoder, encode_frame

DEFAULT_ADDRESS = 0x20  # apart from the dispensing boards' 0x01.. if both share a bus


@dataclass(frozen=True, slots=True)
class ClientTiming:
    """Seconds. The cabinet answers within 50 ms; the longest frame takes 107 ms at 9600 baud."""

    response_timeout: float = 0.25
    retries: int = 3


@dataclass(frozen=True, slots=True)
class Answered:
    request: Request
    response: Response
    attempts: int


@dataclass(frozen=True, slots=True)
class NoAnswer:
    request: Request
    attempts: int


@dataclass(slots=True)
class _InFlight:
    request: Request
    seq: int
    frame: bytes
    attempts: int
    deadline: float


@dataclass(slots=True)
class ClientCounters:
    ignored: int = 0  # well-formed frames that do not answer the request in flight
    undecodable: int = 0  # frames with a good CRC whose payload breaks the tables


class CabinetClient:
    """Transaction layer for one cabinet address."""

    def __init__(
        self, address: int = DEFAULT_ADDRESS, timing: ClientTiming | None = None, seq: int = 0
    ) -> None:
        if not 0 <= address <= 0xFF:
            raise ClientError(f"cabinet address {address} is not a byte")
        self.address = address
        self.timing = timing or ClientTiming()
        self.counters = ClientCounters()
        self._decoder = FrameDecoder()
        self._next_seq = seq & 0xFF
        self._inflight: _InFlight | None = None

    @property
    def busy(self) -> bool:
        return self._inflight is not None

    @property
    def deadline(self) -> float | None:
        return self._inflight.deadline if self._inflight else None

    @property
    def discarded_bytes(self) -> int:
        return self._decoder.discarded

    def send(self, request: Request, now: float) -> bytes:
        """Start a transaction; returns the frame to write."""
        if self._inflight is not None:
            raise ClientError(
                f"{type(request).__name__} while {type(self._inflight.request).__name__} "
                "is still in flight"
            )
        seq = self._next_seq
        self._next_seq = (seq + 1) & 0xFF
        code, payload = encode_request(request)
        frame = encode_frame(Frame(self.address, seq, code, payload))
        self._inflight = _InFlight(request, seq, frame, 1, now + self.timing.response_timeout)
        return frame

    def receive(self, data: bytes, now: float) -> Answered | None:
        """Feed bytes from the cabinet; returns the answer once the request is answered."""
        answered: Answered | None = None
        for frame in self._decoder.feed(data):
            if answered is not None:
                self.counters.ignored += 1
                continue
            answered = self._match(frame)
        return answered

    def on_timeout(self, now: float) -> bytes | NoAnswer | None:
        """Past the deadline: the frame to resend, or :class:`NoAnswer` after the last retry."""
        inflight = self._inflight
        if inflight is None or now < inflight.deadline:
            return None
        self._decoder.discard_partial()
        if inflight.attempts > self.timing.retries:
            self._inflight = None
            return NoAnswer(inflight.request, inflight.attempts)
        inflight.attempts += 1
        inflight.deadline = now + self.timing.response_timeout
        return inflight.frame

    def abandon(self) -> None:
        """Forget the request in flight; a late answer to it will be ignored."""
        self._inflight = None

    def _match(self, frame: Frame) -> Answered | None:
        inflight = self._inflight
        if (
            inflight is None
            or not frame.is_response
            or frame.address != self.address
            or frame.seq != inflight.seq
        ):
            self.counters.ignored += 1
            return None
        request_code = type(inflight.request).CODE
        if frame.code not in (request_code | RESPONSE_BIT, ErrorReply.CODE):
            self.counters.ignored += 1
            return None
        try:
            response = decode_response(frame.code, frame.payload)
        except DecodeError:
            self.counters.undecodable += 1  # the retry asks again
            return None
        if response_code(response, request_code) != frame.code or (
            isinstance(response, ErrorReply) and response.request_code != request_code
        ):
            self.counters.ignored += 1
            return None
        self._inflight = None
        return Answered(inflight.request, response, inflight.attempts)
