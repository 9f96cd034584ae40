"""How one kind of framed device is named in errors, and which errors its driver raises."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeviceKind:
    """``noun`` names the device in every error ("dispenser", "cabinet").

    ``error`` is the driver's own error type (port problems, bad URLs, refusals);
    ``not_answering`` its subclass for a device silent through every retry.
    """

    noun: str
    default_address: int
    error: type[Exception]
    not_answering: type[Exception]
