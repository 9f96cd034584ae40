"""Errors the cabinet driver raises. Each message names the port and what failed."""

from __future__ import annotations


class CabinetDriverError(Exception):
    """The cabinet could not be used: port problem, no answer, or a refused request."""


class CabinetNotAnsweringError(CabinetDriverError):
    """The cabinet stayed silent through every retry (unplugged, powered off, wrong port)."""


class CabinetResetPendingError(CabinetDriverError):
    """The cabinet restarted; resolve open sessions, then call ``acknowledge_reset``."""


class CabinetBusyError(CabinetDriverError):
    """Another session id is still open on the cabinet."""
