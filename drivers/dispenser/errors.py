"""Errors the dispenser driver raises. Each message names the port and what failed."""

from __future__ import annotations


class DispenserError(Exception):
    """The board could not be used: port problem, no answer, or a refused request."""


class BoardNotAnsweringError(DispenserError):
    """The board stayed silent through every retry (unplugged, powered off, wrong port)."""


class BoardResetPendingError(DispenserError):
    """The board restarted; resolve in-flight vends, then call ``acknowledge_reset``."""


class BoardBusyError(DispenserError):
    """Another vend id is still running on the board."""
