"""Which of a machine's sequence numbers are missing, kept as exact ranges.

A machine numbers its events 1, 2, 3 ... without gaps, so the fleet knows what it has
not received. ``SeqTracker`` holds one machine's highest contiguous seq (everything up
to it is stored), its highest seq, and the open gaps between them as exact ranges: a seq
that arrives inside a gap shrinks it at an end or splits it in two, and the last one to
arrive fills it. The tracker is pure; :func:`load_trackers` / :func:`save_trackers`
move it to and from the ``gaps`` table inside the caller's transaction, which holds the
machine rows locked, so concurrent ingest workers never see a half-updated machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, insert, select, update

from fleet.store.models import gaps


@dataclass
class GapRange:
    """Missing seqs ``from_seq..to_seq`` (inclusive); ``id`` is None until stored."""

    from_seq: int
    to_seq: int
    detected_at: datetime
    resync_command_id: str | None = None
    id: int | None = None
    filled_at: datetime | None = None
    dirty: bool = False

    def __contains__(self, seq: object) -> bool:
        return isinstance(seq, int) and self.from_seq <= seq <= self.to_seq

    @property
    def size(self) -> int:
        return self.to_seq - self.from_seq + 1


@dataclass
class SeqTracker:
    machine_id: str
    last_seq: int = 0  # every seq up to here is stored
    max_seq: int = 0
    open: list[GapRange] = field(default_factory=list)  # sorted by from_seq
    done: list[GapRange] = field(default_factory=list)  # filled while tracked, to be saved

    def observe(self, seq: int, now: datetime) -> GapRange | None:
        """Account for a newly stored ``seq``; returns the gap it revealed, if any."""
        opened = None
        if seq > self.max_seq:
            if seq > self.max_seq + 1:
                opened = GapRange(self.max_seq + 1, seq - 1, now, dirty=True)
                self.open.append(opened)
            self.max_seq = seq
        else:
            self._fill(seq, now)
        self.last_seq = self.open[0].from_seq - 1 if self.open else self.max_seq
        return opened

    def _fill(self, seq: int, now: datetime) -> None:
        for index, gap in enumerate(self.open):
            if seq not in gap:
                continue
            gap.dirty = True
            if gap.size == 1:
                gap.filled_at = now
                self.done.append(self.open.pop(index))
            elif seq == gap.from_seq:
                gap.from_seq += 1
            elif seq == gap.to_seq:
                gap.to_seq -= 1
            else:
                tail = GapRange(
                    seq + 1, gap.to_seq, gap.detected_at, gap.resync_command_id, dirty=True
                )
                gap.to_seq = seq - 1
                self.open.insert(index + 1, tail)
            return

    @property
    def missing(self) -> list[tuple[int, int]]:
        return [(gap.from_seq, gap.to_seq) for gap in self.open]


def load_trackers(
    conn: Connection, positions: Mapping[str, tuple[int, int]]
) -> dict[str, SeqTracker]:
    """Trackers for machines given as ``{machine_id: (last_seq, max_seq)}``; open gaps are
    read only for machines that have any (last_seq < max_seq)."""
    trackers = {
        mid: SeqTracker(mid, last_seq=last, max_seq=top) for mid, (last, top) in positions.items()
    }
    behind = [mid for mid, (last, top) in positions.items() if last < top]
    if behind:
        rows = conn.execute(
            select(gaps)
            .where(and_(gaps.c.machine_id.in_(behind), gaps.c.filled_at.is_(None)))
            .order_by(gaps.c.machine_id, gaps.c.from_seq)
        )
        for row in rows:
            trackers[row.machine_id].open.append(
                GapRange(
                    row.from_seq,
                    row.to_seq,
                    row.detected_at,
                    row.resync_command_id,
                    id=row.id,
                )
            )
    return trackers


def save_trackers(conn: Connection, trackers: Iterable[SeqTracker]) -> None:
    changed: list[dict[str, object]] = []
    new: list[dict[str, object]] = []
    for tracker in trackers:
        for gap in (*tracker.open, *tracker.done):
            if not gap.dirty:
                continue
            values = {
                "from_seq": gap.from_seq,
                "to_seq": gap.to_seq,
                "filled_at": gap.filled_at,
                "resync_command_id": gap.resync_command_id,
            }
            if gap.id is None:
                new.append(
                    {**values, "machine_id": tracker.machine_id, "detected_at": gap.detected_at}
                )
            else:
                changed.append({**values, "gap_id": gap.id})
            gap.dirty = False
    if changed:
        conn.execute(
            update(gaps)
            .where(gaps.c.id == bindparam("gap_id"))
            .values(
                from_seq=bindparam("from_seq"),
                to_seq=bindparam("to_seq"),
                filled_at=bindparam("filled_at"),
                resync_command_id=bindparam("resync_command_id"),
            ),
            changed,
        )
    if new:
        conn.execute(insert(gaps), new)
