"""MDB wire format: 9-bit words, checksums, ACK / RET / NAK, block limits.

A *word* is an int 0..0x1FF: the low 8 bits are the byte, 0x100 is the mode bit.
VMC -> peripheral: the address byte carries the mode bit, data and CHK do not.
Peripheral -> VMC: only the last word (CHK, or a lone ACK / NAK) carries it, so the
mode bit marks the end of a peripheral block. ACK / RET / NAK carry no checksum.

A *block* in this package is always the bytes without the checksum: for a command,
the address/command byte followed by its data; for an answer, just the data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from protocols.mdb.errors import FrameError

MODE_BIT = 0x100
ACK = 0x00
RET = 0xAA
NAK = 0xFF
MAX_BLOCK = 36  # bytes per block including the checksum
MAX_DATA = MAX_BLOCK - 1

Word = int
LengthOf = Callable[[bytes], int | None]


def checksum(data: bytes) -> int:
    """Sum of every byte, carry dropped."""
    return sum(data) & 0xFF


def encode_command(block: bytes) -> tuple[Word, ...]:
    """Words for a VMC command block (address byte first), checksum appended."""
    if not block:
        raise FrameError("a command needs at least its address byte")
    if len(block) > MAX_DATA:
        raise FrameError(f"command of {len(block)} bytes exceeds the {MAX_DATA}-byte limit")
    return (MODE_BIT | block[0], *block[1:], checksum(block))


def encode_answer(data: bytes) -> tuple[Word, ...]:
    """Words for a peripheral answer: data + checksum, mode bit on the last; empty = ACK."""
    if not data:
        return (MODE_BIT | ACK,)
    if len(data) > MAX_DATA:
        raise FrameError(f"answer of {len(data)} bytes exceeds the {MAX_DATA}-byte limit")
    return (*data, MODE_BIT | checksum(data))


def words_to_bytes(words: Iterable[Word]) -> bytes:
    """Serialise words two bytes each (low byte, then 0/1 for the mode bit)."""
    out = bytearray()
    for w in words:
        if not 0 <= w <= 0x1FF:
            raise FrameError(f"not a 9-bit word: {w:#x}")
        out += bytes((w & 0xFF, w >> 8))
    return bytes(out)


class WordStream:
    """Rebuild words from the two-byte serialisation, whatever the chunking."""

    def __init__(self) -> None:
        self._half: int | None = None

    def feed(self, data: bytes) -> list[Word]:
        words: list[Word] = []
        for b in data:
            if self._half is None:
                self._half = b
                continue
            if b > 1:
                # Lost sync: treat this byte as the start of the next word.
                self._half = b
                continue
            words.append(self._half | (b << 8))
            self._half = None
        return words


# --- what one VMC -> peripheral transaction produced --------------------------------


@dataclass(frozen=True, slots=True)
class Ack:
    """The peripheral accepted the command and has nothing to say."""


@dataclass(frozen=True, slots=True)
class Data:
    """The peripheral answered with data (checksum already verified and stripped)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class NoReply:
    """No valid answer: silence, a NAK, or a block whose checksum failed every retry."""

    reason: str = "timeout"


Reply = Ack | Data | NoReply


# --- sans-I/O receivers -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnswerReceived:
    """A complete peripheral answer; the VMC must now send ACK (Data) or nothing (Ack)."""

    reply: Ack | Data


@dataclass(frozen=True, slots=True)
class AnswerCorrupt:
    """A peripheral block ended but its checksum or length was wrong: send RET or NAK."""

    reason: str


@dataclass(frozen=True, slots=True)
class PeripheralNak:
    """The peripheral NAKed our command (it saw a bad checksum)."""


AnswerEvent = AnswerReceived | AnswerCorrupt | PeripheralNak


class AnswerReader:
    """VMC side: assemble a peripheral's answer from words; the mode bit ends a block."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, words: Sequence[Word]) -> list[AnswerEvent]:
        events: list[AnswerEvent] = []
        for w in words:
            byte = w & 0xFF
            if not w & MODE_BIT:
                self._buf.append(byte)
                if len(self._buf) > MAX_DATA:
                    self._buf.clear()
                    events.append(AnswerCorrupt(f"answer longer than {MAX_BLOCK} bytes"))
                continue
            data = bytes(self._buf)
            self._buf.clear()
            if not data:
                if byte == ACK:
                    events.append(AnswerReceived(Ack()))
                elif byte == NAK:
                    events.append(PeripheralNak())
                else:
                    events.append(AnswerCorrupt(f"lone word {byte:#04x} is neither ACK nor NAK"))
            elif checksum(data) != byte:
                events.append(
                    AnswerCorrupt(f"checksum {byte:#04x} != {checksum(data):#04x} of {data.hex()}")
                )
            else:
                events.append(AnswerReceived(Data(data)))
        return events


@dataclass(frozen=True, slots=True)
class CommandReceived:
    """Peripheral side: a complete command block with a good checksum."""

    block: bytes


@dataclass(frozen=True, slots=True)
class CommandCorrupt:
    """Peripheral side: a command block whose checksum failed (peripheral stays silent or NAKs)."""

    block: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class VmcResponse:
    """Peripheral side: the VMC's ACK, RET or NAK to the data we sent."""

    code: int


CommandEvent = CommandReceived | CommandCorrupt | VmcResponse


class CommandReader:
    """Peripheral side: assemble VMC commands using the command-length table.

    ``length_of(prefix)`` returns the full block length (without checksum) once the
    prefix is long enough to tell, or None while it is not. Unknown commands must
    return a length too (their best guess) or raise nothing: the reader then waits for
    the next mode-bit word, which always starts a new block.
    """

    def __init__(self, length_of: LengthOf) -> None:
        self._length_of = length_of
        self._buf = bytearray()
        self._in_block = False

    def feed(self, words: Sequence[Word]) -> list[CommandEvent]:
        events: list[CommandEvent] = []
        for w in words:
            byte = w & 0xFF
            if w & MODE_BIT:
                self._buf = bytearray((byte,))
                self._in_block = True
            elif not self._in_block:
                events.append(VmcResponse(byte))
                continue
            else:
                self._buf.append(byte)
            need = self._length_of(bytes(self._buf))
            if need is None:
                if len(self._buf) > MAX_BLOCK:
                    self._in_block = False
                    events.append(CommandCorrupt(bytes(self._buf), "command too long"))
                continue
            if len(self._buf) == need + 1:
                block, chk = bytes(self._buf[:-1]), self._buf[-1]
                self._in_block = False
                if checksum(block) == chk:
                    events.append(CommandReceived(block))
                else:
                    events.append(
                        CommandCorrupt(block, f"checksum {chk:#04x} != {checksum(block):#04x}")
                    )
        return events
