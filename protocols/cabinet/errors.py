"""The cabinet protocol's own errors. Garbage on the wire raises these and nothing else.

Frames are shared with the dispensing board, so a frame that breaks the framing
rules raises :class:`protocols.framed.errors.FrameError` (re-exported here).
"""

from __future__ import annotations

from protocols.framed.errors import FrameError

__all__ = [
    "CabinetBusyError",
    "CabinetError",
    "CabinetResetPendingError",
    "ClientError",
    "DecodeError",
    "FieldError",
    "FrameError",
    "ProcedureError",
    "SessionError",
]


class CabinetError(Exception):
    """Base of every error the cabinet protocol code raises (frames aside)."""


class DecodeError(CabinetError):
    """A well-framed message whose code or fields do not match the protocol tables."""


class FieldError(DecodeError, ValueError):
    """A field value outside its range (bad input from the wire or from a caller)."""


class ClientError(CabinetError):
    """The client was used out of turn, e.g. a second request while one is in flight."""


class ProcedureError(CabinetError):
    """The cabinet answered, but not in a way the procedure can continue from."""


class CabinetResetPendingError(ProcedureError):
    """The cabinet restarted and refuses UNLOCK until the controller acknowledges the reset."""


class CabinetBusyError(ProcedureError):
    """Another session id is still open on the cabinet."""


class SessionError(CabinetError, ValueError):
    """The cabinet session was given bad configuration or an event out of turn."""
