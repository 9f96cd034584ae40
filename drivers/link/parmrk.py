"""Decode the Linux tty PARMRK byte stream into 9-bit MDB words (pure, no I/O).

A native UART has no 9th data bit, so the receiver runs in SPACE stick parity with
``INPCK | PARMRK``: a byte whose mode bit is 1 arrives with the "wrong" parity and
the tty layer marks it. What the kernel delivers, and what this decoder makes of it:

* ``FF 00 xx`` -> word ``0x100 | xx`` (mode bit set: a peripheral's CHK, ACK or NAK);
* ``FF FF``    -> word ``0xFF`` (an ordinary data byte 0xFF, escaped);
* any other byte -> that byte as a word without the mode bit.

Breaks: without ``IGNBRK`` the kernel reports a break as ``FF 00 00``, which is
exactly a mode-bit 0x00 -- a peripheral's ACK, the most common answer on the bus.
The link therefore sets ``IGNBRK`` so that the kernel drops breaks, and this
decoder reads ``FF 00 00`` as ACK, always. (A VMC never needs to *receive* a break;
only the VMC sends one, to reset the bus.)

``FF`` followed by anything other than ``00``/``FF`` cannot come from a tty with
PARMRK set; it is counted in :attr:`ParmrkDecoder.anomalies` and both bytes are
passed through as plain data, so the answer's checksum decides.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocols.mdb.errors import FrameError
from protocols.mdb.wire import MODE_BIT, Word

MARK = 0xFF


class ParmrkDecoder:
    """Incremental: partial escape sequences carry over between :meth:`feed` calls."""

    def __init__(self) -> None:
        self._pending = b""  # b"", b"\xff" or b"\xff\x00"
        self.anomalies = 0

    def reset(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[Word]:
        words: list[Word] = []
        for b in data:
            if not self._pending:
                if b == MARK:
                    self._pending = b"\xff"
                else:
                    words.append(b)
            elif self._pending == b"\xff":
                if b == MARK:
                    words.append(MARK)
                    self._pending = b""
                elif b == 0x00:
                    self._pending = b"\xff\x00"
                else:
                    self.anomalies += 1
                    words += (MARK, b)
                    self._pending = b""
            else:
                words.append(MODE_BIT | b)
                self._pending = b""
        return words


def encode_parmrk(words: Iterable[Word]) -> bytes:
    """What the tty delivers for ``words`` (the inverse of :class:`ParmrkDecoder`)."""
    out = bytearray()
    for w in words:
        if not 0 <= w <= 0x1FF:
            raise FrameError(f"not a 9-bit word: {w:#x}")
        if w & MODE_BIT:
            out += bytes((MARK, 0x00, w & 0xFF))
        elif w == MARK:
            out += b"\xff\xff"
        else:
            out.append(w)
    return bytes(out)
