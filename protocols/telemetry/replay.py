"""The machine's memory of command ids it has accepted, so a command is applied once.

A command is only ever accepted before its expiry, so an id only needs remembering until
then: the guard forgets ids whose command has expired (plus a grace period for a clock
that steps back a little). It holds at most ``capacity`` ids; when that many unexpired
commands are remembered, new commands are refused rather than an old id forgotten,
because forgetting would open a replay window. The controller persists it with
:meth:`ReplayGuard.to_list` in the same transaction that records the command's effect.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from protocols.telemetry.errors import TelemetryError
from protocols.telemetry.fields import COMMAND_ID_PATTERN, format_utc

DEFAULT_CAPACITY = 10_000
PRUNE_GRACE = timedelta(minutes=10)
_COMMAND_ID = re.compile(COMMAND_ID_PATTERN)


class ReplayGuard:
    """Accepted command ids with the expiry of their command. No clock: ``now`` is passed in."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise TelemetryError(f"replay guard capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._expiry: dict[str, datetime] = {}

    def __len__(self) -> int:
        return len(self._expiry)

    def __contains__(self, command_id: object) -> bool:
        return command_id in self._expiry

    @property
    def full(self) -> bool:
        return len(self._expiry) >= self.capacity

    def prune(self, now: datetime) -> int:
        """Forget ids whose command expired more than the grace period ago; returns how many."""
        horizon = _aware(now, "now") - PRUNE_GRACE
        stale = [cid for cid, expiry in self._expiry.items() if expiry <= horizon]
        for cid in stale:
            del self._expiry[cid]
        return len(stale)

    def remember(self, command_id: str, expires_at: datetime) -> None:
        if command_id not in self._expiry and self.full:
            raise TelemetryError(f"replay guard is full ({self.capacity} unexpired commands)")
        self._expiry[command_id] = _aware(expires_at, "expires_at")

    def to_list(self) -> list[list[str]]:
        """``[[command_id, expires_at], ...]`` in expiry order: JSON-ready for persistence."""
        ordered = sorted(self._expiry.items(), key=lambda item: (item[1], item[0]))
        return [[cid, format_utc(expiry)] for cid, expiry in ordered]

    @classmethod
    def from_list(
        cls, items: Iterable[Sequence[str]], capacity: int = DEFAULT_CAPACITY
    ) -> ReplayGuard:
        """Rebuild a guard from :meth:`to_list`; refuses malformed rows by position."""
        guard = cls(capacity)
        for index, item in enumerate(items):
            if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 2:
                raise TelemetryError(f"replay guard row {index}: expected [command_id, expires_at]")
            cid, text = item
            if not isinstance(cid, str) or not _COMMAND_ID.fullmatch(cid):
                raise TelemetryError(f"replay guard row {index}: bad command id {cid!r}")
            try:
                expiry = datetime.fromisoformat(text) if isinstance(text, str) else None
            except ValueError:
                expiry = None
            if expiry is None or expiry.tzinfo is None:
                raise TelemetryError(f"replay guard row {index}: bad expiry {text!r}")
            guard.remember(cid, expiry)
        return guard


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise TelemetryError(f"{name} must be timezone-aware")
    return value
