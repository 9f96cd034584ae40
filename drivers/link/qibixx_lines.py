"""The Qibixx adapter's ASCII line grammar, shared by the link and the adapter simulator.

Master mode (docs.qibixx.com, see reference/mdb.md 1.7): the host sends
``R,<addr>[,<data>]`` with two hex digits per byte (``R,14,01`` = READER ENABLE to
cashless #1; ``R,0B`` = POLL to the changer, no data); the adapter adds the
checksum, ACKs the peripheral's data itself and retries, and answers ``p,ACK``,
``p,NACK`` (no valid answer) or ``p,<hex data>`` (checksum stripped).

Sniffer lines: ``x,<ss>,<tttttttttt>,<hex>`` with ``ss`` = 00 (from the master) or
80 (from a peripheral; low bits are error flags) and a 10-digit timestamp in
0.1 ms units. A master line carries the address byte and the data as two fields
(``x,00,0002599672,12,`` is POLL to cashless #1); a peripheral line carries its data.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from protocols.mdb.errors import FrameError
from protocols.mdb.wire import MAX_DATA, Ack, Data, NoReply, Reply

FROM_MASTER = 0x00
FROM_SLAVE = 0x80
TIMESTAMP_DIGITS = 10
TICKS_PER_SECOND = 10_000  # 0.1 ms units
TIMESTAMP_WRAP = 10_000_000_000  # ten digits
_HEX = frozenset(string.hexdigits)


def parse_hex(text: str) -> bytes:
    """Bytes from two hex digits each (either case); FrameError naming the text if not."""
    if len(text) % 2 or not set(text) <= _HEX:
        raise FrameError(f"{text!r} is not an even number of hex digits")
    return bytes.fromhex(text)


def format_request(block: bytes) -> str:
    """The ``R,...`` line for a command block (address byte + data, no checksum)."""
    if not block:
        raise FrameError("a command needs at least its address byte")
    if len(block) > MAX_DATA:
        raise FrameError(f"command of {len(block)} bytes exceeds the {MAX_DATA}-byte limit")
    line = f"R,{block[0]:02X}"
    return f"{line},{block[1:].hex().upper()}" if len(block) > 1 else line


def parse_answer(line: str) -> Reply | None:
    """A ``p,`` answer as a Reply; None for lines that belong to something else.

    Blank lines and mode, version and sniffer lines (``m,`` ``v,`` ``x,``) are not
    answers. Any other line where an answer is due is reported as NoReply naming it.
    """
    text = line.strip()
    if not text or text[:2] in ("m,", "v,", "x,"):
        return None
    if not text.startswith("p,"):
        return NoReply(f"unexpected adapter line {text!r}")
    body = text[2:]
    if body == "ACK":
        return Ack()
    if body == "NACK":
        return NoReply("nack")
    try:
        data = parse_hex(body)
    except FrameError:
        return NoReply(f"garbled adapter answer {text!r}")
    if not data or len(data) > MAX_DATA:
        return NoReply(f"adapter answer of {len(data)} bytes in {text!r}")
    return Data(data)


@dataclass(frozen=True, slots=True)
class SniffedBlock:
    """One block seen on the bus by the adapter's sniffer."""

    status: int  # 0x00 from master, 0x80 from a peripheral, low bits = error flags
    ticks: int  # timestamp in 0.1 ms units, wrapping at 10 digits
    data: bytes  # master: address byte + data; peripheral: data (empty = ACK)

    @property
    def from_master(self) -> bool:
        return not self.status & FROM_SLAVE


def ticks_at(now: float) -> int:
    """A sniffer timestamp for ``now`` seconds."""
    return int(now * TICKS_PER_SECOND) % TIMESTAMP_WRAP


def format_sniff(block: SniffedBlock) -> str:
    head = f"x,{block.status:02x},{block.ticks:0{TIMESTAMP_DIGITS}d}"
    if block.from_master:
        if not block.data:
            raise FrameError("a master block needs its address byte")
        return f"{head},{block.data[0]:02x},{block.data[1:].hex()}"
    return f"{head},{block.data.hex()}"


def parse_sniff(line: str) -> SniffedBlock:
    """A sniffer line; FrameError naming what is wrong with it."""
    fields = line.strip().split(",")
    if len(fields) < 4 or fields[0] != "x":
        raise FrameError(f"not a sniffer line: {line.strip()!r}")
    status_text, ticks_text = fields[1], fields[2]
    if len(status_text) != 2 or not set(status_text) <= _HEX:
        raise FrameError(f"bad sniffer status {status_text!r} in {line.strip()!r}")
    if len(ticks_text) != TIMESTAMP_DIGITS or not ticks_text.isdigit():
        raise FrameError(f"bad sniffer timestamp {ticks_text!r} in {line.strip()!r}")
    status = int(status_text, 16)
    expected = 4 if status & FROM_SLAVE else 5
    if len(fields) != expected:
        raise FrameError(f"sniffer line needs {expected} fields: {line.strip()!r}")
    data = b"".join(parse_hex(f) for f in fields[3:])
    if not status & FROM_SLAVE and len(fields[3]) != 2:
        raise FrameError(f"master sniffer line needs one address byte: {line.strip()!r}")
    return SniffedBlock(status, int(ticks_text), data)
