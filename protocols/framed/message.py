"""The base of every framed request and answer, and the shape of the ERROR answer.

A request's CODE is 0x01..0x7F; the device answers with CODE | 0x80 and the same
SEQ, or with ERROR (0xFF) naming the request code it refuses. The first six ERROR codes mean
the same in every framed protocol (:class:`CommonError`), so shared simulator code
can refuse a request without knowing the protocol's table.
"""

from __future__ import annotations

import enum
from dataclasses import fields
from typing import ClassVar

from protocols.framed.frames import ERROR_CODE, RESPONSE_BIT


class FramedMessage:
    """Base of every request and answer of a framed protocol."""

    CODE: ClassVar[int] = 0

    def describe(self) -> dict[str, object]:
        """Fields as JSON-friendly values (logs, ``--json``)."""
        out: dict[str, object] = {"message": type(self).__name__}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, enum.Enum):
                value = str(value.name).lower()
            elif isinstance(value, tuple):
                value = [v.describe() if isinstance(v, FramedMessage) else v for v in value]
            out[f.name] = value
        return out


class Refusal(FramedMessage):
    """Base of a protocol's ERROR answer; the subclass declares the fields as a dataclass."""

    CODE: ClassVar[int] = ERROR_CODE
    request_code: int


class CommonError(enum.IntEnum):
    """ERROR codes with the same value and meaning in every framed protocol."""

    UNKNOWN_COMMAND = 0x01
    BAD_LENGTH = 0x02
    BAD_ARGUMENT = 0x03
    BUSY = 0x04  # another vend or session is still running
    STALE_BOOT = 0x05  # ACK RESET named a boot count that is not the current one
    RESET_PENDING = 0x06  # restarted, and nobody acknowledged it yet


def answer_code(message: FramedMessage, request_code: int) -> int:
    """The CODE byte for ``message`` answering a request with ``request_code``."""
    if isinstance(message, Refusal):
        return ERROR_CODE
    return request_code | RESPONSE_BIT
