"""Several queries ordered by machine, read side by side one machine at a time.

The reconciliation reads each big table once, as a stream ordered by machine, instead of
holding a month of sales in memory. Streams are merged in the database's own order of
machine ids (its collation may differ from Python's), learnt once by :func:`db_order`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Select, text

STREAM_CHUNK = 5_000  # rows fetched per round trip from a server-side cursor


def db_order(conn: Connection, ids: Sequence[str]) -> list[str]:
    """``ids`` in the order the database sorts ``machine_id`` (ORDER BY)."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            text("SELECT m FROM unnest(CAST(:ids AS varchar[])) AS t(m) ORDER BY m"),
            {"ids": list(ids)},
        )
        return [m for (m,) in rows]
    # SQLite's default BINARY collation compares UTF-8 bytes: code point order, as Python.
    return sorted(ids)


def stream(conn: Connection, stmt: Select[Any]) -> Iterator[Any]:
    """Rows of ``stmt`` without buffering them all (a server-side cursor on PostgreSQL)."""
    result = conn.execution_options(stream_results=True, yield_per=STREAM_CHUNK).execute(stmt)
    try:
        yield from result
    finally:
        result.close()


class MachineStream:
    """Rows whose first column is the machine id, in :func:`db_order`; :meth:`take` hands
    out one machine's rows and skips rows of machines nobody asks for."""

    def __init__(self, rows: Iterable[Any], rank: dict[str, int]) -> None:
        self._rows = iter(rows)
        self._rank = rank
        self._head: Any = next(self._rows, None)

    def take(self, machine: str) -> list[Any]:
        target = self._rank[machine]
        found: list[Any] = []
        rank = self._rank
        rows = self._rows
        head = self._head
        while head is not None:
            position = rank.get(head[0])
            if position is None or position < target:
                head = next(rows, None)
            elif position > target:
                break
            else:
                found.append(head)
                head = next(rows, None)
        self._head = head
        return found
