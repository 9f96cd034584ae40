"""One framed protocol's message tables and error types, as the shared code needs them.

The client (:mod:`protocols.framed.client`), the drivers and the simulators are
written once against :class:`FramedCodec`; each protocol builds one instance from
its own encoders, decoders and errors, so every error stays that protocol's own.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from protocols.framed.message import CommonError, FramedMessage

RequestT = TypeVar("RequestT", bound=FramedMessage)
ResponseT = TypeVar("ResponseT", bound=FramedMessage)


@dataclass(frozen=True, slots=True)
class FramedCodec(Generic[RequestT, ResponseT]):
    """Encoders, decoders and error types of one protocol.

    ``device`` names the peer in errors ("board", "cabinet"); ``request_codes`` are
    the CODE bytes the protocol defines for requests; ``error_reply`` builds the
    protocol's ERROR answer from a request code and one of its ``error_codes``.
    """

    device: str
    request_codes: Collection[int]
    encode_request: Callable[[RequestT], tuple[int, bytes]]
    decode_request: Callable[[int, bytes], RequestT]
    encode_response: Callable[[ResponseT], bytes]
    decode_response: Callable[[int, bytes], ResponseT]
    error_reply: Callable[[int, Any], ResponseT]
    error_codes: type[enum.IntEnum]
    decode_error: type[Exception]
    field_error: type[Exception]
    client_error: type[Exception]

    def refuse(self, request_code: int, error: CommonError) -> ResponseT:
        """The ERROR answer for one of the codes every framed protocol shares."""
        return self.error_reply(request_code, self.error_codes(int(error)))
