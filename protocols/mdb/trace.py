"""MDB bus traces, read and written, in the two formats the field uses.

(a) Word format, one block per line: a direction, then 9-bit words as three hex
    digits, ``0x100`` being the mode bit::

        # cashless #1 vend request
        V>P 113 000 000 064 000 001 078
        P>V 100

    Lines starting with ``#`` or ``--`` are comments. A lone word from the VMC
    without the mode bit is its ACK / RET / NAK to the peripheral's data.

(b) The Qibixx sniffer log, ``x,<status>,<timestamp>,<hex>``: status 0x00 marks a
    block from the master, 0x80 one from a peripheral, the low bits are error flags
    the sniffer raised (we read any of them as a bad checksum); the timestamp
    counts 0.1 ms; the bytes exclude the checksum.

Reading never stops at a bad line: it yields a :class:`TraceError` value carrying
the line number and goes on, so a long capture with one garbled line still decodes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from protocols.mdb.errors import TraceError
from protocols.mdb.wire import ACK, MODE_BIT, NAK, RET, checksum


class Direction(enum.Enum):
    VMC_TO_PERIPHERAL = "V>P"
    PERIPHERAL_TO_VMC = "P>V"


class ChecksumStatus(enum.Enum):
    OK = "ok"
    BAD = "bad"
    ABSENT = "absent"  # control words, and sniffer logs that strip the checksum


class Control(enum.Enum):
    ACK = "ACK"
    RET = "RET"
    NAK = "NAK"


_CONTROL_BY_BYTE = {ACK: Control.ACK, RET: Control.RET, NAK: Control.NAK}
_BYTE_BY_CONTROL = {v: k for k, v in _CONTROL_BY_BYTE.items()}


@dataclass(frozen=True, slots=True)
class TraceBlock:
    """One block seen on the bus. ``data`` excludes the checksum; for a V>P block it
    starts with the address byte. ``control`` is set for lone ACK / RET / NAK words."""

    line: int
    direction: Direction
    data: bytes
    checksum: ChecksumStatus
    control: Control | None = None
    timestamp: float | None = None  # seconds, when the format carries one


# --- format (a): words ---------------------------------------------------------------


def _parse_words(fields: list[str], line: int) -> list[int]:
    words: list[int] = []
    for field in fields:
        try:
            word = int(field, 16)
        except ValueError:
            raise TraceError(f"{field!r} is not a hex word", line) from None
        if not 0 <= word <= 0x1FF:
            raise TraceError(f"{field!r} is not a 9-bit word (000-1FF)", line)
        words.append(word)
    return words


def _block_from_words(direction: Direction, words: list[int], line: int) -> TraceBlock:
    if direction is Direction.VMC_TO_PERIPHERAL:
        if not words[0] & MODE_BIT:
            if len(words) == 1 and words[0] in _CONTROL_BY_BYTE:
                return TraceBlock(
                    line, direction, b"", ChecksumStatus.ABSENT, _CONTROL_BY_BYTE[words[0]]
                )
            raise TraceError("a VMC block must start with a mode-bit address word", line)
        if any(w & MODE_BIT for w in words[1:]):
            raise TraceError("only the address word of a VMC block carries the mode bit", line)
        if len(words) < 2:
            raise TraceError("a VMC command needs its checksum word", line)
    else:
        if not words[-1] & MODE_BIT:
            raise TraceError("the last word of a peripheral block must carry the mode bit", line)
        if any(w & MODE_BIT for w in words[:-1]):
            raise TraceError("only the last word of a peripheral block carries the mode bit", line)
        if len(words) == 1:
            byte = words[0] & 0xFF
            if byte in (ACK, NAK):
                return TraceBlock(
                    line, direction, b"", ChecksumStatus.ABSENT, _CONTROL_BY_BYTE[byte]
                )
            raise TraceError(f"lone peripheral word {words[0]:03X} is neither ACK nor NAK", line)
    data = bytes(w & 0xFF for w in words[:-1])
    status = ChecksumStatus.OK if checksum(data) == words[-1] & 0xFF else ChecksumStatus.BAD
    return TraceBlock(line, direction, data, status)


def _read_word_line(text: str, line: int) -> TraceBlock:
    fields = text.split()
    try:
        direction = Direction(fields[0].upper())
    except ValueError:
        raise TraceError(f"expected V>P or P>V, got {fields[0]!r}", line) from None
    if len(fields) < 2:
        raise TraceError("a block needs at least one word", line)
    return _block_from_words(direction, _parse_words(fields[1:], line), line)


# --- format (b): Qibixx sniffer ------------------------------------------------------


def _read_sniffer_line(text: str, line: int) -> TraceBlock:
    parts = text.split(",")
    if len(parts) < 4 or parts[0].strip().lower() != "x":
        raise TraceError("sniffer lines look like x,<status>,<timestamp>,<hex>", line)
    try:
        status = int(parts[1], 16)
        ticks = int(parts[2])
    except ValueError:
        raise TraceError("bad status or timestamp field", line) from None
    hex_text = "".join(p.strip() for p in parts[3:])
    try:
        data = bytes.fromhex(hex_text)
    except ValueError:
        raise TraceError(f"{hex_text!r} is not hex bytes", line) from None
    direction = Direction.PERIPHERAL_TO_VMC if status & 0x80 else Direction.VMC_TO_PERIPHERAL
    if not data and direction is Direction.PERIPHERAL_TO_VMC:
        # A peripheral line with no data is its ACK (how the adapter logs "no data").
        checked = ChecksumStatus.BAD if status & 0x7F else ChecksumStatus.ABSENT
        return TraceBlock(line, direction, b"", checked, Control.ACK, ticks / 10_000)
    if not data:
        raise TraceError("empty block", line)
    flags = status & 0x7F
    control = None
    # A lone 00 / AA / FF is a control byte: from a peripheral ACK or NAK, from the VMC
    # its answer to peripheral data (no command goes to the reserved addresses 00, A8, F8
    # without data).
    allowed = (ACK, NAK) if direction is Direction.PERIPHERAL_TO_VMC else (ACK, RET, NAK)
    if len(data) == 1 and data[0] in allowed:
        control, data = _CONTROL_BY_BYTE[data[0]], b""
    checked = ChecksumStatus.BAD if flags else ChecksumStatus.ABSENT
    return TraceBlock(line, direction, data, checked, control, ticks / 10_000)


# --- reading and writing --------------------------------------------------------------


def read_trace(text: str) -> Iterator[TraceBlock | TraceError]:
    """Blocks in file order; unreadable lines come out as TraceError values."""
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith(("#", "--")):
            continue
        try:
            if stripped[:2].lower() == "x,":
                yield _read_sniffer_line(stripped, number)
            else:
                yield _read_word_line(stripped, number)
        except TraceError as exc:
            yield exc


def block_words(block: TraceBlock) -> tuple[int, ...]:
    """The 9-bit words of a block as they were (or would have been) on the wire."""
    if block.control is not None:
        byte = _BYTE_BY_CONTROL[block.control]
        return (byte | MODE_BIT,) if block.direction is Direction.PERIPHERAL_TO_VMC else (byte,)
    chk = checksum(block.data)
    if block.checksum is ChecksumStatus.BAD:
        chk ^= 0xFF  # keep the recorded fact that it did not match
    if block.direction is Direction.VMC_TO_PERIPHERAL:
        return (block.data[0] | MODE_BIT, *block.data[1:], chk)
    return (*block.data, chk | MODE_BIT)


def write_words(blocks: Iterable[TraceBlock]) -> str:
    """Format (a) text for ``blocks``."""
    lines = [f"{b.direction.value} " + " ".join(f"{w:03X}" for w in block_words(b)) for b in blocks]
    return "\n".join(lines) + ("\n" if lines else "")


def write_sniffer(blocks: Iterable[TraceBlock]) -> str:
    """Format (b) text for ``blocks`` (blocks without a timestamp get 0)."""
    lines = []
    for b in blocks:
        status = 0x80 if b.direction is Direction.PERIPHERAL_TO_VMC else 0x00
        if b.checksum is ChecksumStatus.BAD:
            status |= 0x01
        ticks = round((b.timestamp or 0.0) * 10_000)
        data = bytes((_BYTE_BY_CONTROL[b.control],)) if b.control else b.data
        lines.append(f"x,{status:02x},{ticks:010d},{data.hex()}")
    return "\n".join(lines) + ("\n" if lines else "")
