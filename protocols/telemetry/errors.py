"""The telemetry contract's one error type: every rejected topic, payload or command."""

from __future__ import annotations


class TelemetryError(ValueError):
    """A topic, payload or command that does not satisfy the contract.

    ``reason`` names the problem in words an operator can act on (which field, what was
    wrong, what was expected); the fleet logs it and the machine puts it in its ack.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
