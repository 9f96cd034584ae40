"""The fleet side of whole-system runs: `vend fleet serve` as a child process, a broker
that can be stopped and started again on the same port, and independent readers of the
machine's journal and the fleet database for exactly-once checks.

Nothing here asks the code under test what it did: the journal is read with plain
sqlite3 and the fleet database with plain SQL, so a check compares two ledgers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, func, select

from fleet.store.models import commands, events, gaps, machines
from tests.e2e.rig import VEND
from tests.support.servers import Broker, free_port, run_mosquitto

T = TypeVar("T")


def wait_until(
    check: Callable[[], T | None], timeout: float, message: str, poll: float = 0.05
) -> T:
    """Poll ``check`` until it returns something truthy; a deadline, not a timing assert."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {message}")
        time.sleep(poll)


# --- the fleet service as a process --------------------------------------------------------


class FleetServe:
    """`vend fleet serve -v` in a child process; its log goes to ``log`` and is scanned for
    the 'subscribed at' line it writes on every (re)connect."""

    def __init__(self, log: Path, db: str, broker: str, *, client_id: str, **flags: object) -> None:
        """``flags``: further options, ``batch_size=50`` -> ``--batch-size 50``,
        ``share=False`` -> ``--no-share``, ``migrate=True`` -> ``--migrate``."""
        argv = [VEND, "fleet", "serve", "-v", "--db", db, "--broker", broker]
        argv += ["--client-id", client_id]
        for name, value in flags.items():
            option = "--" + name.replace("_", "-")
            if value is True:
                argv.append(option)
            elif value is False:
                argv.append("--no-" + name.replace("_", "-"))
            else:
                argv += [option, str(value)]
        self.log = log
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "NO_COLOR": "1"},
        )
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with self.log.open("a", encoding="utf-8") as out:
            for raw in self.proc.stderr:
                line = raw.decode(errors="replace")
                out.write(line)
                out.flush()
                with self._lock:
                    self._lines.append(line)

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def subscriptions(self) -> int:
        """How many times it (re)subscribed: one per connection to the broker."""
        return sum("subscribed at" in line for line in self.lines())

    def wait_subscribed(self, count: int = 1, timeout: float = 45.0) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"fleet serve exited ({self.proc.returncode}):\n{self.tail()}")
            return self.subscriptions() >= count

        wait_until(ready, timeout, f"fleet serve to subscribe ({count}); log:\n{self.tail()}")

    def tail(self, n: int = 30) -> str:
        return "".join(self.lines()[-n:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean disconnect, no rollback but the database's own."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(15)
        self._reader.join(5)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(5)
        return code


# --- a broker that goes away and comes back -------------------------------------------------


class RestartableBroker:
    """Mosquitto with persistence in a private folder, on a port fixed at construction,
    so clients reconnect to the same address and persistent sessions survive a restart."""

    def __init__(self, folder: Path, users: dict[str, str]) -> None:
        self.folder = folder
        self.users = users
        self.port = free_port()
        self._stack: contextlib.ExitStack | None = None
        self.broker: Broker | None = None

    def url(self, user: str | None = None) -> str:
        if user is None:
            return f"mqtt://127.0.0.1:{self.port}"
        return f"mqtt://{user}:{self.users[user]}@127.0.0.1:{self.port}"

    def start(self) -> Broker:
        assert self._stack is None, "the broker is already running"
        stack = contextlib.ExitStack()
        self.broker = stack.enter_context(run_mosquitto(self.folder, self.users, port=self.port))
        self._stack = stack
        return self.broker

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file and exits."""
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    @property
    def running(self) -> bool:
        return self._stack is not None


@contextlib.contextmanager
def restartable_broker(users: dict[str, str]) -> Iterator[RestartableBroker]:
    # Not under pytest's tmp_path: Mosquitto drops to its own user, who must reach it.
    folder = Path(tempfile.mkdtemp(prefix="vendfleet-outage-"))
    broker = RestartableBroker(folder, users)
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


# --- the machine's ledger, read straight from its journal -----------------------------------


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    seq: int
    kind: str
    body: dict[str, Any]
    sent: bool


def read_outbox(journal: Path) -> dict[int, OutboxEntry]:
    """Every outbox row of a machine journal, by seq (plain sqlite3, read only)."""
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT seq, kind, body, sent FROM outbox ORDER BY seq").fetchall()
    finally:
        db.close()
    return {
        int(seq): OutboxEntry(int(seq), str(kind), json.loads(body), sent is not None)
        for seq, kind, body, sent in rows
    }


def outbox_count(journal: Path) -> int:
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    finally:
        db.close()


# --- the fleet's ledger -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int  # insertion order
    seq: int
    msg_id: str
    schema: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FleetLedger:
    events: list[StoredEvent]  # in insertion (id) order
    last_seq: int | None
    max_seq: int | None
    gaps: list[tuple[int, int, bool]]  # (from_seq, to_seq, filled)
    commands: list[str]  # names of commands the fleet issued to the machine


def reader(url: str) -> Engine:
    """An engine that only reads, made without the fleet's own engine set-up (whose SQLite
    transactions begin IMMEDIATE, taking the write lock the service needs)."""
    return create_engine(url)


def event_count(engine: Engine, machine_id: str) -> int:
    with engine.connect() as conn:
        stmt = select(func.count()).select_from(events).where(events.c.machine_id == machine_id)
        return int(conn.execute(stmt).scalar_one())


def read_ledger(engine: Engine, machine_id: str) -> FleetLedger:
    with engine.connect() as conn:
        rows = conn.execute(
            select(events.c.id, events.c.seq, events.c.msg_id, events.c.schema, events.c.body)
            .where(events.c.machine_id == machine_id)
            .order_by(events.c.id)
        ).all()
        position = conn.execute(
            select(machines.c.last_seq, machines.c.max_seq).where(machines.c.id == machine_id)
        ).first()
        gap_rows = conn.execute(
            select(gaps.c.from_seq, gaps.c.to_seq, gaps.c.filled_at).where(
                gaps.c.machine_id == machine_id
            )
        ).all()
        names = conn.execute(
            select(commands.c.name).where(commands.c.machine_id == machine_id)
        ).scalars()
        issued = [str(name) for name in names]
    return FleetLedger(
        events=[
            StoredEvent(int(r.id), int(r.seq), str(r.msg_id), str(r.schema), json.loads(r.body))
            for r in rows
        ],
        last_seq=None if position is None else int(position.last_seq),
        max_seq=None if position is None else int(position.max_seq),
        gaps=[(int(g.from_seq), int(g.to_seq), g.filled_at is not None) for g in gap_rows],
        commands=issued,
    )
