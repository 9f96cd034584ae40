"""The wire side every simulated framed device shares: frames in, one answer frame out.

A simulated dispensing board and a simulated cabinet differ in their firmware
(:meth:`FramedSim.handle`), not in how they read frames: they ignore their own
echo and other addresses, refuse a CODE they do not know or a payload they cannot
read with the ERROR codes every framed protocol shares, answer with the request's
SEQ, and can be unplugged or told to lose answers. They also restart the same way:
the boot count moves on and the RESET flag stays up, refusing new vends or sessions,
until the controller acknowledges that boot. Bytes in, bytes out, with ``now``
passed in; :meth:`FramedSim.receive` is a :data:`drivers.sim.pty.ByteHandler`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic

from drivers.sim.args import count_arg
from protocols.framed.codec import FramedCodec, RequestT, ResponseT
from protocols.framed.frames import RESPONSE_BIT, Frame, FrameDecoder, encode_frame
from protocols.framed.message import CommonError, answer_code


@dataclass(slots=True)
class WireCounters:
    requests: int = 0  # frames addressed to us while plugged in
    answers_dropped: int = 0  # answers lost on purpose (``drop_answers``)


class FramedSim(abc.ABC, Generic[RequestT, ResponseT]):
    """Base of a simulated framed device: the wire; subclasses are the firmware."""

    def __init__(
        self,
        codec: FramedCodec[RequestT, ResponseT],
        address: int,
        counters: WireCounters | None = None,
        boot_count: int = 0,
    ) -> None:
        self.codec = codec
        self.address = address
        self.plugged = True
        self.counters = counters or WireCounters()
        self.boot_count = boot_count
        self.reset_pending = False
        self._drop_answers = 0
        self._decoder = FrameDecoder()

    @abc.abstractmethod
    def handle(self, request: RequestT, now: float) -> ResponseT:
        """Answer one decoded request (tests may call this directly)."""

    @abc.abstractmethod
    def control(self, action: str, args: dict[str, object], now: float) -> dict[str, object]:
        """Act on the simulated hardware (control socket); returns :meth:`status`."""

    @abc.abstractmethod
    def status(self) -> dict[str, object]:
        """The device's state as JSON-friendly values."""

    def receive(self, data: bytes, now: float) -> bytes:
        """Bytes from the controller in, answer frames out (empty when silent)."""
        out = bytearray()
        for frame in self._decoder.feed(data):
            if frame.is_response or frame.address != self.address or not self.plugged:
                continue  # our own echo, another device's traffic, or we are unplugged
            self.counters.requests += 1
            answer, code = self._answer_frame(frame, now)
            if self._drop_answers:
                self._drop_answers -= 1
                self.counters.answers_dropped += 1
                continue
            payload = self.codec.encode_response(answer)
            out += encode_frame(Frame(self.address, frame.seq, code, payload))
        return bytes(out)

    # --- what every framed device's firmware does the same way --------------------

    def _restart(self) -> None:
        """Power-up: a new boot count, the RESET flag up, any half frame lost."""
        self.boot_count = (self.boot_count + 1) & 0xFFFF
        self.reset_pending = True
        self._decoder = FrameDecoder()

    def _acknowledge_reset(
        self, request_code: int, boot: int, acknowledged: Callable[[int], ResponseT]
    ) -> ResponseT:
        """ACK RESET: only for the current boot, so a newer reset is never acked blindly."""
        if boot != self.boot_count:
            return self.codec.refuse(request_code, CommonError.STALE_BOOT)
        self.reset_pending = False
        return acknowledged(boot)

    def _refuse_start(self, request_code: int, busy: bool) -> ResponseT | None:
        """Why a new vend or session cannot start now, or ``None`` if it can."""
        if self.reset_pending:
            return self.codec.refuse(request_code, CommonError.RESET_PENDING)
        if busy:
            return self.codec.refuse(request_code, CommonError.BUSY)
        return None

    def _may_void(self, void_if_unseen: bool) -> bool:
        """Voiding an unseen id needs a complete memory: after a reset it may have run."""
        return void_if_unseen and not self.reset_pending

    def _wire_control(
        self, action: str, args: dict[str, object], *, drops: int | None = None
    ) -> bool:
        """The control actions of every device (unplug, plug, drop_answers); True if done.

        ``drops`` is how many answers ``drop_answers`` loses when no count is given.
        """
        if action in ("unplug", "plug"):
            self.plugged = action == "plug"
        elif action == "drop_answers":
            self._drop_answers = count_arg(args, "count", drops)
        else:
            return False
        return True

    def _wire_status(self) -> dict[str, object]:
        return {
            "boot_count": self.boot_count,
            "reset_pending": self.reset_pending,
            "plugged": self.plugged,
        }

    def _answer_frame(self, frame: Frame, now: float) -> tuple[ResponseT, int]:
        codec = self.codec
        if frame.code not in codec.request_codes:
            refusal = codec.refuse(frame.code & ~RESPONSE_BIT, CommonError.UNKNOWN_COMMAND)
            return refusal, answer_code(refusal, frame.code)
        try:
            request = codec.decode_request(frame.code, frame.payload)
        except codec.field_error:
            refusal = codec.refuse(frame.code, CommonError.BAD_ARGUMENT)
            return refusal, answer_code(refusal, frame.code)
        except codec.decode_error:
            refusal = codec.refuse(frame.code, CommonError.BAD_LENGTH)
            return refusal, answer_code(refusal, frame.code)
        answer = self.handle(request, now)
        return answer, answer_code(answer, frame.code)
