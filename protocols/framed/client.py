"""The controller's side of one framed link: one request in flight, sequence numbers, retries.

Sans-I/O: the driver writes what :meth:`FramedClient.send` returns, feeds what it
reads to :meth:`FramedClient.receive`, and calls :meth:`FramedClient.on_timeout`
when :attr:`FramedClient.deadline` passes. Nothing here reads a clock. Generic over
a protocol's messages and errors (:class:`~protocols.framed.codec.FramedCodec`).

Rules (docs/dispenser-protocol.md, section 6; the cabinet's are the same):

* a retry resends the *same* frame with the *same* SEQ, so a late answer to an
  earlier attempt is as good as the answer to the retry (every request of both
  protocols is idempotent on the device);
* an answer is taken only if it carries our address, the in-flight SEQ and the code
  that answers our request; anything else (our own echo on RS-485, a duplicate, an
  answer to a request we gave up on) is counted and ignored;
* a device silent through every retry is reported as :class:`NoAnswer`, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic

from protocols.framed.codec import FramedCodec, RequestT, ResponseT
from protocols.framed.frames import ERROR_CODE, RESPONSE_BIT, Frame, FrameDecoder, encode_frame
from protocols.framed.message import Refusal, answer_code


@dataclass(frozen=True, slots=True)
class ClientTiming:
    """Seconds. Devices answer within 50 ms; a 40-byte frame takes 42 ms at 9600 baud."""

    response_timeout: float = 0.25
    retries: int = 3


@dataclass(frozen=True, slots=True)
class Answered(Generic[RequestT, ResponseT]):
    request: RequestT
    response: ResponseT
    attempts: int


@dataclass(frozen=True, slots=True)
class NoAnswer(Generic[RequestT]):
    request: RequestT
    attempts: int


@dataclass(slots=True)
class _InFlight(Generic[RequestT]):
    request: RequestT
    seq: int
    frame: bytes
    attempts: int
    deadline: float


@dataclass(slots=True)
class ClientCounters:
    ignored: int = 0  # well-formed frames that do not answer the request in flight
    undecodable: int = 0  # frames with a good CRC whose payload breaks the tables


class FramedClient(Generic[RequestT, ResponseT]):
    """Transaction layer for one device address."""

    def __init__(
        self,
        codec: FramedCodec[RequestT, ResponseT],
        address: int,
        timing: ClientTiming | None = None,
        seq: int = 0,
    ) -> None:
        if not 0 <= address <= 0xFF:
            raise codec.client_error(f"{codec.device} address {address} is not a byte")
        self.codec = codec
        self.address = address
        self.timing = timing or ClientTiming()
        self.counters = ClientCounters()
        self._decoder = FrameDecoder()
        self._next_seq = seq & 0xFF
        self._inflight: _InFlight[RequestT] | None = None

    @property
    def busy(self) -> bool:
        return self._inflight is not None

    @property
    def deadline(self) -> float | None:
        """When :meth:`on_timeout` should be called if no answer has arrived."""
        return self._inflight.deadline if self._inflight else None

    @property
    def discarded_bytes(self) -> int:
        return self._decoder.discarded

    def send(self, request: RequestT, now: float) -> bytes:
        """Start a transaction; returns the frame to write."""
        if self._inflight is not None:
            raise self.codec.client_error(
                f"{type(request).__name__} while {type(self._inflight.request).__name__} "
                "is still in flight"
            )
        seq = self._next_seq
        self._next_seq = (seq + 1) & 0xFF
        code, payload = self.codec.encode_request(request)
        frame = encode_frame(Frame(self.address, seq, code, payload))
        self._inflight = _InFlight(
            request, seq, frame, attempts=1, deadline=now + self.timing.response_timeout
        )
        return frame

    def receive(self, data: bytes, now: float) -> Answered[RequestT, ResponseT] | None:
        """Feed bytes from the device; returns the answer once the request is answered."""
        answered: Answered[RequestT, ResponseT] | None = None
        for frame in self._decoder.feed(data):
            if answered is not None:
                self.counters.ignored += 1  # a duplicate after the answer we took
                continue
            answered = self._match(frame)
        return answered

    def on_timeout(self, now: float) -> bytes | NoAnswer[RequestT] | None:
        """Past the deadline: the frame to resend, or :class:`NoAnswer` after the last retry."""
        inflight = self._inflight
        if inflight is None or now < inflight.deadline:
            return None
        # Half a frame older than the response time is junk; the retry's answer is coming.
        self._decoder.discard_partial()
        if inflight.attempts > self.timing.retries:
            self._inflight = None
            return NoAnswer(inflight.request, inflight.attempts)
        inflight.attempts += 1
        inflight.deadline = now + self.timing.response_timeout
        return inflight.frame

    def abandon(self) -> None:
        """Forget the request in flight (the port closed); a late answer will be ignored."""
        self._inflight = None

    def _match(self, frame: Frame) -> Answered[RequestT, ResponseT] | None:
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
        if frame.code not in (request_code | RESPONSE_BIT, ERROR_CODE):
            self.counters.ignored += 1
            return None
        try:
            response = self.codec.decode_response(frame.code, frame.payload)
        except self.codec.decode_error:
            # Let the retry ask again rather than act on a payload we cannot read.
            self.counters.undecodable += 1
            return None
        if answer_code(response, request_code) != frame.code or (
            isinstance(response, Refusal) and response.request_code != request_code
        ):
            self.counters.ignored += 1
            return None
        self._inflight = None
        return Answered(inflight.request, response, inflight.attempts)
