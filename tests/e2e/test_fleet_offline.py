"""Offline for a while, then every event reaches the fleet database exactly once.

A real machine (``vend machine run`` with its simulators over pseudo-terminals) trades
while the broker is stopped, piling up over 2,000 events in its journal's outbox; the
broker comes back on the same port (same persistence), the machine's drain publishes
the backlog, and a real ``vend fleet serve`` process ingests it, on SQLite and on
PostgreSQL. A second flow SIGKILLs the fleet process after a few hundred rows of the
backlog and starts it again with the same client id: QoS 1 redelivery of what it had
not acknowledged (it acknowledges only after the commit) and its persistent session
must bring the rest. Afterwards the machine's journal and the fleet's ``events`` table
are read independently (plain sqlite3 / SQL) and must hold the same events, each once,
stored in sequence order, with the machine's outbox fully acknowledged.

How the events are made. Customers on this 2-core machine manage about 1.4 sales a
second (card and cash sales through the simulated reader, changer and dispenser), about
3 events a second: 2,000 would take ten minutes a run. So customers do buy for real,
between service visits, and during each visit the operator restocks slot by slot and
takes a slot out of service and back through the front panel. Each of those actions is
a session input that the controller journals together with its outbox rows in one
transaction, exactly as it journals a sale, and the drain cannot tell them apart; they
run at hundreds a second. Everything the fleet receives was produced and published by
the real controller process: the test writes no row to the journal.

The flows run one fleet worker with ``--no-share``: Mosquitto 2.0.11 does not restore a
shared subscription of an offline session from its persistence after a restart, so a
worker in a shared group misses whatever machines publish between the broker's restart
and its own re-subscription (see ``ServiceOptions.share``). The last test runs the
deployed default (shared group) through that window on purpose and checks that the
fleet's gap detection and a signed resync still get every event in exactly once.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from fleet.commands import register_machine
from fleet.store.db import make_engine
from fleet.store.schema import upgrade
from tests.e2e.fleet_process import (
    FleetLedger,
    FleetServe,
    OutboxEntry,
    RestartableBroker,
    event_count,
    outbox_count,
    read_ledger,
    read_outbox,
    reader,
    restartable_broker,
    wait_until,
)
from tests.e2e.rig import SELECTIONS, MachineRig, machine_rig
from tests.support.servers import Postgres

pytestmark = [pytest.mark.e2e, pytest.mark.pty, pytest.mark.broker, pytest.mark.slow]

MACHINE = "vm-0001"
USERS = {"fleet": "fleet-offline-pw", MACHINE: "vm-offline-pw"}
KEY_BYTES = bytes(range(32))
KEY = "hex:" + KEY_BYTES.hex()
TARGET_EVENTS = 2000  # made while the broker is down
KILL_AFTER = 300  # rows of the backlog stored before the SIGKILL
VISIT_ROUNDS = 100  # restock passes per service visit (5 events each)
COIN_5000 = 4
PARS = {str(s["code"]): int(str(s["par"])) for s in SELECTIONS}
DEADLINE = 120.0  # for the backlog to be stored (a failure message, not a timing assert)


# --- the machine trading offline --------------------------------------------------------------


@dataclass(frozen=True)
class Trading:
    sales: int
    events: int
    seconds: float


def journal_of(rig: MachineRig) -> Path:
    return rig.folder / "data" / "journal.sqlite"


def _counter(rig: MachineRig, name: str) -> int:
    return int(rig.status()["counters"][name])


def card_sale(rig: MachineRig, code: str) -> None:
    before = _counter(rig, "cashless_sales_count")
    rig.mdb.call("cashless1", "present_card", funds=100000)
    rig.wait_for(
        lambda: rig.status()["display"]["message"] == "Choose a selection", message="card session"
    )
    rig.panel("select", code=code)
    rig.wait_for(lambda: _counter(rig, "cashless_sales_count") > before, message="card sale")
    rig.wait_idle()
    rig.wait_accepting()


def cash_sale(rig: MachineRig, code: str) -> None:
    before = _counter(rig, "cash_sales_count")
    for _ in range(3):
        rig.mdb.call("changer", "insert_coin", coin_type=COIN_5000)
    rig.wait_for(lambda: rig.status()["display"]["credit"] == 15000, message="cash credit")
    rig.panel("select", code=code)
    rig.wait_for(lambda: _counter(rig, "cash_sales_count") > before, message="cash sale")
    rig.wait_for(lambda: rig.wait_idle()["display"]["credit"] == 0, message="change paid")
    rig.wait_accepting()


def service_visit(rig: MachineRig, rounds: int) -> None:
    """Restock slot by slot (each fill a journaled stock change), take a slot out of
    service and back, and leave every selection at par."""
    rig.panel("service_open")
    for n in range(rounds):
        for code, par in PARS.items():
            rig.panel("fill", code=code, count=par - 1 - n % 2)
        rig.panel("out_of_service", code="B1", reason="restocking")
        rig.panel("in_service", code="B1")
    rig.panel("fill")
    rig.panel("service_close")
    rig.wait_accepting()


def trade(rig: MachineRig, events: int) -> Trading:
    """Customers buy and the operator restocks until ``events`` more outbox rows exist."""
    journal = journal_of(rig)
    start, began, sales = outbox_count(journal), time.monotonic(), 0
    while outbox_count(journal) - start < events:
        card_sale(rig, "A2")
        cash_sale(rig, "A1")
        sales += 2
        service_visit(rig, VISIT_ROUNDS)
    return Trading(sales, outbox_count(journal) - start, time.monotonic() - began)


# --- the two ledgers --------------------------------------------------------------------------


def assert_exactly_once(
    outbox: dict[int, OutboxEntry], fleet: FleetLedger, *, resynced: bool = False
) -> None:
    """The fleet's events are the journal's outbox rows, each once; the machine's outbox
    is acknowledged. Without a resync they were also stored in sequence order and the
    fleet never saw a gap. After a resync the re-sent rows are stored after newer ones,
    so arrival order is not seq order; then the ledger is what orders them: ``last_seq``
    (every seq up to it is stored) reaches the end and every gap it opened is filled."""
    assert list(outbox) == list(range(1, len(outbox) + 1)), "the journal's seqs have holes"
    stored = [e.seq for e in fleet.events]
    assert len(stored) == len(set(stored)), "an event is stored twice"
    assert set(stored) == set(outbox), (
        f"missing {sorted(set(outbox) - set(stored))[:20]}, "
        f"unexpected {sorted(set(stored) - set(outbox))[:20]}"
    )
    for event in fleet.events:
        row = outbox[event.seq]
        assert event.msg_id == f"{MACHINE}:{event.seq}"
        assert event.schema == f"vend.{row.kind}", event.seq
        assert event.body == row.body, f"seq {event.seq}: the body differs from the journal's"
    assert (fleet.last_seq, fleet.max_seq) == (len(outbox), len(outbox))
    assert all(filled for *_, filled in fleet.gaps), f"open gaps: {fleet.gaps}"
    assert all(row.sent for row in outbox.values()), "the machine's outbox is not acknowledged"
    if not resynced:
        # Insertion (id) order: the machine publishes in seq order and the fleet PUBACKs
        # only what it committed, so even a redelivery after a crash resumes where the
        # commits stopped, and each new row has a higher seq than the one before.
        assert stored == sorted(stored), "events were stored out of sequence order"
        assert fleet.gaps == [], f"the fleet saw gaps: {fleet.gaps}"
        assert fleet.commands == [], f"the fleet had to ask for a resync: {fleet.commands}"


# --- the flow ---------------------------------------------------------------------------------


@dataclass
class Run:
    tmp_path: Path
    db: str
    broker: RestartableBroker
    engine: Engine
    flags: dict[str, object]
    client_id: str = field(default_factory=lambda: f"fleet-offline-{uuid.uuid4().hex[:8]}")
    fleets: list[FleetServe] = field(default_factory=list)
    # what was measured
    before_outage: int = 0
    trading: Trading | None = None
    killed_at: int | None = None
    drain_seconds: float = 0.0
    total: int = 0

    @property
    def fleet(self) -> FleetServe:
        return self.fleets[-1]

    def start_fleet(self) -> FleetServe:
        """`vend fleet serve` with the same client id each time (--migrate, as the
        systemd unit migrates before every start)."""
        self.fleets.append(
            FleetServe(
                self.tmp_path / "fleet.log",
                self.db,
                self.broker.url("fleet"),
                client_id=self.client_id,
                migrate=True,
                **self.flags,
            )
        )
        self.fleet.wait_subscribed()
        return self.fleet

    def stored(self) -> int:
        return event_count(self.engine, MACHINE)

    def kill_mid_ingest(self, journal: Path) -> None:
        """SIGKILL the fleet once KILL_AFTER rows of the backlog are stored, then start it
        again; fails if the kill came too late to leave anything unstored."""
        first = self.stored()
        wait_until(
            lambda: self.stored() - first >= KILL_AFTER,
            DEADLINE,
            f"{KILL_AFTER} rows of the backlog stored",
            poll=0.01,
        )
        self.fleet.kill()
        self.killed_at = self.stored()
        assert self.killed_at < outbox_count(journal), (
            f"all {self.killed_at} events were stored before the kill: nothing was in flight"
        )
        self.start_fleet()

    def report(self, name: str) -> None:
        trading = self.trading
        assert trading is not None
        kill = "" if self.killed_at is None else f"SIGKILL with {self.killed_at} stored; "
        print(  # noqa: T201 -- the figures the issue asks for (pytest -s / -rP shows them)
            f"\n{name}: {self.before_outage} events before the outage; offline "
            f"{trading.sales} sales and {trading.events} events in {trading.seconds:.1f} s; "
            f"{kill}all {self.total} stored {self.drain_seconds:.1f} s after the broker "
            f"came back; fleet commands: {read_ledger(self.engine, MACHINE).commands}"
        )


def register(db: str) -> None:
    """What an operator does before a machine goes live: the schema, then the machine's
    key, so the fleet can sign a resync if it ever needs one."""
    engine = make_engine(db)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            register_machine(conn, MACHINE, KEY_BYTES, datetime.now(UTC))
    finally:
        engine.dispose()


@contextlib.contextmanager
def running(tmp_path: Path, db: str, **flags: object) -> Iterator[tuple[Run, MachineRig]]:
    """Broker, fleet service and machine up, the machine's first events stored."""
    register(db)
    engine = reader(db)
    (tmp_path / "machine").mkdir()
    telemetry = {"broker": "", "password": USERS[MACHINE], "command_key": KEY, "max_backoff": 1.0}
    try:
        with restartable_broker(USERS) as broker:
            broker.start()
            run = Run(tmp_path, db, broker, engine, flags)
            run.start_fleet()
            telemetry["broker"] = broker.url()
            try:
                with machine_rig(
                    tmp_path / "machine", machine_id=MACHINE, telemetry=telemetry
                ) as rig:
                    rig.fill_all()
                    journal = journal_of(rig)
                    run.before_outage = wait_until(
                        lambda: (n := outbox_count(journal)) == run.stored() and n,
                        30,
                        "the first events in the fleet database",
                    )
                    yield run, rig
            finally:
                for fleet in run.fleets:
                    fleet.stop()
    finally:
        engine.dispose()


def outage(run: Run, rig: MachineRig) -> None:
    """Stop the broker, trade until TARGET_EVENTS are queued, bring the broker back."""
    run.broker.stop()
    rig.wait_for(lambda: not rig.status()["telemetry"]["connected"], message="machine offline")
    run.trading = trade(rig, TARGET_EVENTS)
    assert rig.status()["telemetry"]["connected"] is False
    run.broker.start()


def settle(run: Run, rig: MachineRig, since: float) -> None:
    """Wait until the fleet holds every outbox row and the machine has no backlog, then
    stop both cleanly (so nothing changes while the ledgers are read)."""
    journal = journal_of(rig)
    run.total = wait_until(
        lambda: (
            (n := outbox_count(journal)) == run.stored()
            and rig.status()["telemetry"]["backlog"] == 0
            and n
        ),
        DEADLINE,
        "every event in the fleet database and the machine's outbox acknowledged",
        poll=0.2,
    )
    run.drain_seconds = time.monotonic() - since
    assert rig.stop_machine() == 0
    assert run.fleet.stop() == 0, run.fleet.tail()


def offline_then_back(tmp_path: Path, db: str, *, kill_fleet: bool) -> Run:
    with running(tmp_path, db, batch_size=50, share=False) as (run, rig):
        outage(run, rig)
        back = time.monotonic()
        if kill_fleet:
            run.kill_mid_ingest(journal_of(rig))
        settle(run, rig, back)
        journal = journal_of(rig)
    assert_exactly_once(read_outbox(journal), read_ledger(run.engine, MACHINE))
    return run


# --- the tests --------------------------------------------------------------------------------


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fleet.sqlite'}"


@pytest.fixture
def pg_db(postgres: Postgres) -> str:
    return postgres.create_database(f"offline_{uuid.uuid4().hex[:8]}")


@pytest.mark.timeout(240)
def test_broker_outage_backlog_arrives_exactly_once_sqlite(tmp_path: Path) -> None:
    offline_then_back(tmp_path, sqlite_url(tmp_path), kill_fleet=False).report(
        "broker outage, SQLite"
    )


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_broker_outage_backlog_arrives_exactly_once_postgres(tmp_path: Path, pg_db: str) -> None:
    offline_then_back(tmp_path, pg_db, kill_fleet=False).report("broker outage, PostgreSQL")


@pytest.mark.timeout(240)
def test_fleet_sigkilled_mid_ingest_restarts_exactly_once_sqlite(tmp_path: Path) -> None:
    offline_then_back(tmp_path, sqlite_url(tmp_path), kill_fleet=True).report(
        "fleet SIGKILL mid-ingest, SQLite"
    )


@pytest.mark.timeout(240)
def test_shared_group_back_after_the_drain_still_gets_everything_once(tmp_path: Path) -> None:
    """The deployed default (shared subscription group) with the fleet away across the
    broker restart: the machine drains its backlog before the fleet re-subscribes. On
    Mosquitto 2.0.11 the broker drops it for the group (the shared subscription of the
    offline session was not restored), the machine has its PUBACKs and marks it sent;
    the fleet learns of the loss from the machine's next sale (a gap), asks for a signed
    resync and the machine sends it all again. A broker that keeps the subscription
    queues the backlog instead and no resync is needed; either way, exactly once."""
    with running(tmp_path, sqlite_url(tmp_path), batch_size=50) as (run, rig):
        run.broker.stop()
        rig.wait_for(lambda: not rig.status()["telemetry"]["connected"], message="offline")
        run.trading = trade(rig, TARGET_EVENTS)
        assert run.fleet.stop() == 0, run.fleet.tail()
        run.broker.start()
        back = time.monotonic()
        rig.wait_for(
            lambda: rig.status()["telemetry"]["backlog"] == 0, timeout=DEADLINE, message="drained"
        )
        run.start_fleet()
        card_sale(rig, "A2")  # the next event after the fleet is back
        settle(run, rig, back)
        journal = journal_of(rig)
    ledger = read_ledger(run.engine, MACHINE)
    assert_exactly_once(read_outbox(journal), ledger, resynced=True)
    run.report("shared group away across the broker restart, SQLite")
