"""The machine's append-only journal: every money and stock input, durable before it acts.

SQLite in WAL mode with ``synchronous=FULL``: when :meth:`Journal.append` returns,
the row is on disk. The controller applies an input to the pure vend session,
appends it here, and only then moves hardware (write-ahead); replaying the rows
through :func:`protocols.vend.session.replay` rebuilds the state after a power cut.

The outbox for telemetry lives in the same database and is written in the same
transaction as the journal row, so an event is never published without being
journaled, nor journaled without being queued for the fleet. An outbox row keeps the
message kind and its body JSON; its ``seq`` (AUTOINCREMENT, so never reused even after
retention deletes old rows, and without gaps because a rolled-back insert also rolls
back the counter) is the envelope's gap-free sequence number, and the drain wraps the
body in its envelope at publish time. Outbox helpers run on the journal's one writer
thread, so they never interleave with an append on the shared connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

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
    kind     TEXT    NOT NULL,
    body     TEXT    NOT NULL,
    boot     INTEGER NOT NULL,
    created  TEXT    NOT NULL,
    sent     TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (seq) WHERE sent IS NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _sent_stamp(at: datetime) -> str:
    # Fixed width, so the text order of stamps is their time order (for pruning).
    return at.astimezone(UTC).isoformat(timespec="microseconds")


class JournalError(Exception):
    """The journal cannot be opened or written: the machine must not take money."""


T = TypeVar("T")
# meta rows written with a change: a value sets the key, None deletes it
MetaUpdate = Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A telemetry body waiting for its sequence number: ``kind`` names the topic."""

    kind: str
    body: str  # the body as JSON


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    kind: str
    body: str
    boot: int
    created: datetime


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

    def append(
        self,
        event: VendInput,
        at: datetime,
        outbox: Sequence[OutboxMessage] = (),
        meta: MetaUpdate | None = None,
    ) -> int:
        """Durably record ``event`` with its outbox messages and meta changes in one
        transaction; returns its sequence number."""
        stamp = at.astimezone(UTC).isoformat()

        def write(db: sqlite3.Connection) -> int:
            cur = db.execute(
                "INSERT INTO journal(at, boot, body) VALUES (?, ?, ?)",
                (stamp, self.boot, encode_input(event)),
            )
            seq = int(cur.lastrowid or 0)
            self._insert_outbox(db, outbox, stamp, seq)
            self._write_meta(db, meta)
            return seq

        return self.transaction(write)

    async def append_async(
        self,
        event: VendInput,
        at: datetime,
        outbox: Sequence[OutboxMessage] = (),
        meta: MetaUpdate | None = None,
    ) -> int:
        return await self.run(lambda: self.append(event, at, outbox, meta))

    def enqueue(
        self, outbox: Sequence[OutboxMessage], at: datetime, meta: MetaUpdate | None = None
    ) -> list[int]:
        """Outbox messages (and meta changes) that belong to no journal row, such as a
        command ack or a device alarm; returns their outbox sequence numbers."""
        return self.enqueue_with(lambda _db: (outbox, meta), at)

    def enqueue_with(
        self,
        build: Callable[[sqlite3.Connection], tuple[Sequence[OutboxMessage], MetaUpdate | None]],
        at: datetime,
    ) -> list[int]:
        """Like :meth:`enqueue`, with the messages built inside the transaction (``build``
        may read and write the database: everything commits together or not at all)."""
        stamp = at.astimezone(UTC).isoformat()

        def write(db: sqlite3.Connection) -> list[int]:
            outbox, meta = build(db)
            seqs = self._insert_outbox(db, outbox, stamp, None)
            self._write_meta(db, meta)
            return seqs

        return self.transaction(write)

    def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` inside BEGIN IMMEDIATE ... COMMIT; any failure rolls back."""
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            result = work(db)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise JournalError(f"journal write failed: {exc}") from exc
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return result

    async def run(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the journal's writer thread (serialised with every append)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, work)

    def _insert_outbox(
        self,
        db: sqlite3.Connection,
        outbox: Sequence[OutboxMessage],
        stamp: str,
        journal_seq: int | None,
    ) -> list[int]:
        seqs = []
        for m in outbox:
            cur = db.execute(
                "INSERT INTO outbox(journal, kind, body, boot, created) VALUES (?, ?, ?, ?, ?)",
                (journal_seq, m.kind, m.body, self.boot, stamp),
            )
            seqs.append(int(cur.lastrowid or 0))
        return seqs

    @staticmethod
    def _write_meta(db: sqlite3.Connection, meta: MetaUpdate | None) -> None:
        for key, value in (meta or {}).items():
            if value is None:
                db.execute("DELETE FROM meta WHERE key=?", (key,))
            else:
                db.execute(
                    "INSERT INTO meta(key, value) VALUES(?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (key, value),
                )

    # --- the outbox, for the drain (call through :meth:`run`) -----------------------

    def unsent(self, limit: int) -> list[OutboxRow]:
        rows = self.db.execute(
            "SELECT seq, kind, body, boot, created FROM outbox WHERE sent IS NULL "
            "ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            OutboxRow(int(seq), str(kind), str(body), int(boot), datetime.fromisoformat(created))
            for seq, kind, body, boot, created in rows
        ]

    def mark_sent(self, seqs: Sequence[int], at: datetime) -> None:
        stamp = _sent_stamp(at)

        def write(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE outbox SET sent=? WHERE seq=? AND sent IS NULL",
                [(stamp, seq) for seq in seqs],
            )

        self.transaction(write)

    @staticmethod
    def mark_unsent_after(db: sqlite3.Connection, after_seq: int) -> int:
        """Queue every kept row after ``after_seq`` again (inside a transaction)."""
        cur = db.execute(
            "UPDATE outbox SET sent=NULL WHERE seq > ? AND sent IS NOT NULL", (after_seq,)
        )
        return int(cur.rowcount)

    def backlog(self) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM outbox WHERE sent IS NULL").fetchone()
        return int(row[0])

    def last_outbox_seq(self) -> int:
        """The last sequence number handed out (kept by AUTOINCREMENT even if pruned)."""
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name='outbox'").fetchone()
        return int(row[0]) if row else 0

    def is_sent(self, seq: int) -> bool:
        row = self.db.execute("SELECT sent FROM outbox WHERE seq=?", (seq,)).fetchone()
        return row is None or row[0] is not None  # pruned rows were sent

    def prune_sent(self, before: datetime) -> int:
        """Delete rows sent before ``before``; unsent rows are never deleted."""
        stamp = _sent_stamp(before)
        return self.transaction(
            lambda db: int(
                db.execute(
                    "DELETE FROM outbox WHERE sent IS NOT NULL AND sent < ?", (stamp,)
                ).rowcount
            )
        )

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
