from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.telemetry import (
    CommandName,
    ReplayGuard,
    TelemetryError,
    VerdictOutcome,
    sign,
    verify,
)
from protocols.telemetry.examples import AT, MACHINE, example_commands
from protocols.telemetry.replay import PRUNE_GRACE
from tests.protocols.telemetry.strategies import command_ids, moments

KEY = b"k" * 32


def test_prune_forgets_only_ids_expired_beyond_the_grace_period() -> None:
    guard = ReplayGuard()
    guard.remember("cmd-0000-old", AT - PRUNE_GRACE - timedelta(seconds=1))
    guard.remember("cmd-0000-edge", AT - PRUNE_GRACE)
    guard.remember("cmd-0000-recent", AT - timedelta(seconds=1))
    guard.remember("cmd-0000-live", AT + timedelta(hours=1))
    assert guard.prune(AT) == 2
    assert "cmd-0000-old" not in guard
    assert "cmd-0000-edge" not in guard
    assert "cmd-0000-recent" in guard
    assert "cmd-0000-live" in guard
    assert guard.prune(AT) == 0


@settings(max_examples=100)
@given(st.dictionaries(command_ids, moments, max_size=20))
def test_persistence_round_trip(entries: dict[str, datetime]) -> None:
    guard = ReplayGuard()
    for cid, expiry in entries.items():
        guard.remember(cid, expiry)
    rows = guard.to_list()
    assert [row[0] for row in rows] == sorted(entries, key=lambda c: (entries[c], c))
    rebuilt = ReplayGuard.from_list(rows)
    assert rebuilt.to_list() == rows
    assert len(rebuilt) == len(entries)
    for cid in entries:
        assert cid in rebuilt


def test_a_persisted_guard_still_catches_the_replay() -> None:
    cmd = sign(example_commands()[CommandName.RESYNC], KEY)
    first = ReplayGuard()
    assert verify(cmd, key=KEY, machine_id=MACHINE, now=AT, guard=first).ok
    restored = ReplayGuard.from_list(first.to_list())
    again = verify(cmd, key=KEY, machine_id=MACHINE, now=AT, guard=restored)
    assert again.outcome is VerdictOutcome.REPLAYED


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([["cmd-00000001"]], "row 0: expected [command_id, expires_at]"),
        (["cmd-00000001"], "row 0: expected"),
        ([["bad id", "2025-01-01T00:00:00Z"]], "row 0: bad command id"),
        ([["cmd-00000001", "2025-01-01T00:00:00Z"], ["cmd-00000002", "soon"]], "row 1: bad expiry"),
        ([["cmd-00000001", "2025-01-01T00:00:00"]], "row 0: bad expiry"),
        ([["cmd-00000001", 5]], "row 0: bad expiry"),
    ],
)
def test_malformed_persisted_rows_are_refused(rows: Any, reason: str) -> None:
    with pytest.raises(TelemetryError) as caught:
        ReplayGuard.from_list(rows)
    assert reason in caught.value.reason


def test_capacity_is_enforced() -> None:
    guard = ReplayGuard(capacity=2)
    guard.remember("cmd-00000001", AT)
    guard.remember("cmd-00000002", AT)
    assert guard.full
    guard.remember("cmd-00000002", AT + timedelta(hours=1))  # refreshing a known id is fine
    with pytest.raises(TelemetryError, match="full"):
        guard.remember("cmd-00000003", AT)
    with pytest.raises(TelemetryError, match="at least 1"):
        ReplayGuard(capacity=0)


def test_naive_times_are_refused() -> None:
    guard = ReplayGuard()
    with pytest.raises(TelemetryError, match="timezone-aware"):
        guard.remember("cmd-00000001", datetime(2025, 1, 1))  # noqa: DTZ001
    with pytest.raises(TelemetryError, match="timezone-aware"):
        guard.prune(datetime(2025, 1, 1))  # noqa: DTZ001
    guard.remember("cmd-00000001", datetime(2025, 1, 1, tzinfo=UTC))
    assert len(guard) == 1
