"""SeqTracker: whatever order seqs arrive in, the open gaps are exactly what is missing."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.gaps import SeqTracker

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def missing_ranges(have: set[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    top = max(have, default=0)
    seq = 1
    while seq <= top:
        if seq in have:
            seq += 1
            continue
        start = seq
        while seq not in have:
            seq += 1
        ranges.append((start, seq - 1))
    return ranges


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=1, max_value=60), unique=True, max_size=60))
def test_open_gaps_are_exactly_the_missing_seqs(seqs: list[int]) -> None:
    tracker = SeqTracker("vm-0001")
    have: set[int] = set()
    for seq in seqs:
        tracker.observe(seq, NOW)
        have.add(seq)
        assert tracker.missing == missing_ranges(have)
        gaps = missing_ranges(have)
        assert tracker.last_seq == (gaps[0][0] - 1 if gaps else max(have))
        assert tracker.max_seq == max(have)


def test_a_gap_opens_once_and_splits_then_fills() -> None:
    tracker = SeqTracker("vm-0001")
    assert tracker.observe(1, NOW) is None
    opened = tracker.observe(6, NOW)
    assert opened is not None
    assert (opened.from_seq, opened.to_seq) == (2, 5)
    assert tracker.observe(7, NOW) is None
    tracker.observe(3, NOW)
    assert tracker.missing == [(2, 2), (4, 5)]
    for seq in (2, 5, 4):
        tracker.observe(seq, NOW)
    assert tracker.missing == []
    assert tracker.last_seq == 7
    assert all(gap.filled_at == NOW for gap in tracker.done)
