"""The machine's append-only journal: every money and stock input, durable before it acts.

SQLite in WAL mode with ``synchronous=FULL``: when :meth:`Journal.append` returns,
the row is on disk. The controller applies an input to the pure vend session,
appends it here, and only then moves hardware (write-ahead); replaying the rows
through :func:`protocols.vend.session.replay` rebuilds the state after a power cut.

The outbox for telemetry lives in the same database and is written in the same
transaction as the journal row, so an event is never published without being
journaled, nor journaled without being queued for the fleet.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from protocols.vend.inputs import VendInput, decode_input, encode_input

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    at    TEXT    NOT NULL,
    boot  INTEGER NOT NULL,
    body  TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    journal  INTEGER,
    topic    TEXT    NOT NULL,
    payload  TEXT    NOT NULL,
    created  TEXT    NOT NULL,
    sent     TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (seq) WHERE sent IS NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class JournalError(Exception):
    """The journal cannot be opened or written: the machine must not take money."""


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    topic: str
    payload: str


@dataclass(frozen=True, slots=True)
class JournalEntry:
    seq: int
    at: datetime
    boot: int
    event: VendInput


class Journal:
    """One SQLite file; all writes go through one thread so the event loop never blocks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self.boot = 0

    # --- life cycle ---------------------------------------------------------------

    def open(self, *, readonly: bool = False, count_boot: bool = True) -> None:
        """Open (creating if needed) and count a boot; ``readonly`` for inspection tools,
        ``count_boot=False`` for tools that write meta data beside a running machine."""
        if readonly:
            if not self.path.exists():
                raise JournalError(f"no journal at {self.path}")
            uri = f"file:{self.path}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE key='boot'").fetchone()
            if not count_boot:
                self.boot = int(row[0]) if row else 0
                self._db = db
                return
            self.boot = int(row[0]) + 1 if row else 1
            db.execute(
                "INSERT INTO meta(key, value) VALUES('boot', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (str(self.boot),),
            )
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        self._db = db

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise JournalError("journal is not open")
        return self._db

    # --- writing ------------------------------------------------------------------

    def append(self, event: VendInput, at: datetime, outbox: Sequence[OutboxMessage] = ()) -> int:
        """Durably record ``event`` (and its outbox messages); returns its sequence number."""
        db = self.db
        stamp = at.astimezone(UTC).isoformat()
        try:
            db.execute("BEGIN IMMEDIATE")
            cur = db.execute(
                "INSERT INTO journal(at, boot, body) VALUES (?, ?, ?)",
                (stamp, self.boot, encode_input(event)),
            )
            seq = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO outbox(journal, topic, payload, created) VALUES (?, ?, ?, ?)",
                [(seq, m.topic, m.payload, stamp) for m in outbox],
            )
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise JournalError(f"journal write failed: {exc}") from exc
        return seq

    async def append_async(
        self, event: VendInput, at: datetime, outbox: Sequence[OutboxMessage] = ()
    ) -> int:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.append, event, at, outbox)

    # --- reading ------------------------------------------------------------------

    def entries(self, after: int = 0) -> Iterator[JournalEntry]:
        rows = self.db.execute(
            "SELECT seq, at, boot, body FROM journal WHERE seq > ? ORDER BY seq", (after,)
        )
        for seq, at, boot, body in rows:
            yield JournalEntry(int(seq), datetime.fromisoformat(at), int(boot), decode_input(body))

    def last_seq(self) -> int:
        row = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()
        return int(row[0])

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )
