"""The dispensing-board protocol's own errors. Garbage on the wire raises these and nothing else.

The framing is shared with the cabinet, so a frame that breaks its rules raises
:class:`protocols.framed.errors.FrameError` (re-exported here).
"""

from __future__ import annotations

from protocols.framed.errors import FrameError

__all__ = [
    "BoardBusyError",
    "BoardResetPendingError",
    "ClientError",
    "DecodeError",
    "DispenseError",
    "FrameError",
    "ProcedureError",
]


class DispenseError(Exception):
    """Base of every error the dispenser protocol code raises (frames aside)."""


class DecodeError(DispenseError):
    """A well-framed message whose code or fields do not match the protocol tables."""


class ClientError(DispenseError):
    """The client was used out of turn, e.g. a second request while one is in flight."""


class ProcedureError(DispenseError):
    """The board answered, but not in a way a vend or a query can continue from."""


class BoardResetPendingError(ProcedureError):
    """The board restarted and refuses RUN until the controller acknowledges the reset."""


class BoardBusyError(ProcedureError):
    """Another vend id is still running on the board."""
