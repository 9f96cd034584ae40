"""Frames of the dispensing-board and cabinet protocols: length-prefixed, CRC-16, resync on SOF.

Layout (docs/dispenser-protocol.md, section 3; the cabinet uses it unchanged)::

    SOF  ADDR  SEQ  CODE  LEN  PAYLOAD[LEN]  CRC_HI  CRC_LO
    A5   01    07   02    05   ...           xx      xx

The CRC is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over ADDR..PAYLOAD, sent
big-endian like every other multi-byte field. There is no byte stuffing: the start
byte may also occur inside a frame, so a receiver that meets a bad length or a bad
CRC drops only the start byte it tried and looks for the next one. A real frame
that followed a damaged one is therefore still found.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.framed.errors import FrameError

SOF = 0xA5
HEADER_LEN = 5  # SOF ADDR SEQ CODE LEN
CRC_LEN = 2
OVERHEAD = HEADER_LEN + CRC_LEN
# Small on purpose: a corrupted LEN must not make a receiver wait long for bytes.
MAX_PAYLOAD = 96
MAX_FRAME = OVERHEAD + MAX_PAYLOAD
RESPONSE_BIT = 0x80  # set in CODE on every frame the device sends
ERROR_CODE = 0xFF  # CODE of the ERROR answer, which names the request code it refuses


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame without SOF and CRC. ``code`` has bit 7 set when the device sent it."""

    address: int
    seq: int
    code: int
    payload: bytes = b""

    def __post_init__(self) -> None:
        for name in ("address", "seq", "code"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise FrameError(f"frame {name} {value} is not a byte")
        if len(self.payload) > MAX_PAYLOAD:
            raise FrameError(f"payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD}")

    @property
    def is_response(self) -> bool:
        return bool(self.code & RESPONSE_BIT)


def encode_frame(frame: Frame) -> bytes:
    body = bytes((frame.address, frame.seq, frame.code, len(frame.payload))) + frame.payload
    return bytes((SOF,)) + body + crc16(body).to_bytes(2, "big")


def decode_frame(data: bytes) -> Frame:
    """Exactly one frame, nothing before or after it; raises :class:`FrameError`."""
    if len(data) < OVERHEAD:
        raise FrameError(f"frame of {len(data)} bytes is shorter than the {OVERHEAD}-byte minimum")
    if data[0] != SOF:
        raise FrameError(f"frame starts with {data[0]:#04x}, not the start byte {SOF:#04x}")
    length = data[4]
    if length > MAX_PAYLOAD:
        raise FrameError(f"length byte {length} exceeds the {MAX_PAYLOAD}-byte payload limit")
    if len(data) != OVERHEAD + length:
        raise FrameError(f"length byte says {OVERHEAD + length} bytes, got {len(data)}")
    body = data[1 : HEADER_LEN + length]
    received = int.from_bytes(data[HEADER_LEN + length :], "big")
    expected = crc16(body)
    if received != expected:
        raise FrameError(f"CRC {received:#06x} does not match {expected:#06x}")
    return Frame(data[1], data[2], data[3], bytes(data[HEADER_LEN : HEADER_LEN + length]))


class FrameDecoder:
    """Rebuild frames from a byte stream, whatever the chunking; never raises on input.

    Bytes that cannot start a valid frame are skipped and counted in ``discarded``;
    a receiver that wants to see the damage reads that counter.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.discarded = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                return frames
            frames.append(frame)

    def discard_partial(self) -> None:
        """Forget an incomplete frame (the sender gave up on it; a retry is coming)."""
        self.discarded += len(self._buf)
        self._buf.clear()

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def _next(self) -> Frame | None:
        buf = self._buf
        while buf:
            start = buf.find(SOF)
            if start < 0:
                self._drop(len(buf))
                return None
            if start:
                self._drop(start)
            if len(buf) < HEADER_LEN:
                return None
            length = buf[4]
            if length > MAX_PAYLOAD:
                self._drop(1)
                continue
            if len(buf) < OVERHEAD + length:
                return None
            try:
                frame = decode_frame(bytes(buf[: OVERHEAD + length]))
            except FrameError:
                self._drop(1)
                continue
            del buf[: OVERHEAD + length]
            return frame
        return None

    def _drop(self, count: int) -> None:
        self.discarded += count
        del self._buf[:count]
