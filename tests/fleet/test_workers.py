"""Two ingest processes in one shared-subscription group on PostgreSQL, and the embedded
(amqtt, MQTT 3.1.1) broker end to end, both through `vend fleet serve`."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import func, select

from fleet.mqtt import BrokerAddress
from fleet.service import FleetService
from fleet.store.db import make_engine
from fleet.store.models import events, gaps, machines, sales
from fleet.store.schema import upgrade
from tests.fleet.conftest import sale
from tests.fleet.test_service import DEADLINE, options, publish, rows, serving, unique, wait_until
from tests.support.servers import Broker, Postgres, free_port

ROOT = Path(__file__).resolve().parents[2]


class Serve:
    """`vend fleet serve` in a child process; waits for its 'subscribed' log line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from cli.fleet import app; app()", "serve", "-v", *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "NO_COLOR": "1"},
        )
        self.lines: list[str] = []
        self.subscribed = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if "subscribed at" in line:
                self.subscribed.set()

    def wait_subscribed(self) -> None:
        if not self.subscribed.wait(DEADLINE):
            self.stop()
            raise AssertionError("serve never subscribed:\n" + "".join(self.lines))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(DEADLINE)


@pytest.fixture
def pg_url(postgres: Postgres) -> str:
    url = postgres.create_database(unique("workers").replace("-", "_"))
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.mark.broker
@pytest.mark.postgres
async def test_two_workers_split_the_load_and_store_each_message_once(
    pg_url: str, mosquitto: Broker
) -> None:
    opts = options()
    child = Serve(
        "--db", pg_url, "--broker", mosquitto.url("fleet"),
        "--group", opts.group, "--client-id", unique("child"), "--batch-size", "20",
    )  # fmt: skip
    engine = make_engine(pg_url)
    try:
        await asyncio.to_thread(child.wait_subscribed)
        service = FleetService(engine, BrokerAddress.from_url(mosquitto.url("fleet")), opts)
        per_machine, machine_ids = 60, [f"vm-{n:04d}" for n in range(4, 8)]
        async with serving(service):
            # Interleaved: neighbouring seqs of one machine go to different workers.
            await asyncio.gather(
                *(
                    publish(mosquitto, mid, [sale(seq, mid) for seq in range(1, per_machine + 1)])
                    for mid in machine_ids
                )
            )
            total = per_machine * len(machine_ids)
            await wait_until(lambda: rows(engine, events) == total, f"{total} events")
            await wait_until(
                lambda: (
                    rows(engine, gaps.select().where(gaps.c.filled_at.is_(None)).subquery()) == 0
                ),
                "transient gaps to close",
            )
        mine = service.stats.report.stored
        assert 0 < mine < total, f"the in-process worker stored {mine} of {total}"
        assert rows(engine, sales) == total
        with engine.connect() as conn:
            # The session broker may hold other tests' retained statuses: those machines
            # get rows too, so look only at the ones this test fed.
            positions: dict[str, tuple[int, int]] = {
                row.id: (row.last_seq, row.max_seq)
                for row in conn.execute(
                    select(machines.c.id, machines.c.last_seq, machines.c.max_seq).where(
                        machines.c.id.in_(machine_ids)
                    )
                )
            }
            per_seq: dict[str, int] = {
                row.machine_id: row.n
                for row in conn.execute(
                    select(events.c.machine_id, func.count().label("n")).group_by(
                        events.c.machine_id
                    )
                )
            }
        assert per_seq == dict.fromkeys(machine_ids, per_machine)
        assert positions == dict.fromkeys(machine_ids, (per_machine, per_machine))
    finally:
        assert child.stop() == 0, "".join(child.lines)
        engine.dispose()


async def test_embedded_broker_serves_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("amqtt", reason="the embedded broker is the optional 'broker' extra")
    db = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    port = free_port()
    child = Serve(
        "--db", db, "--migrate", "--embedded-broker", "--broker", f"mqtt://127.0.0.1:{port}"
    )  # fmt: skip
    try:
        await asyncio.to_thread(child.wait_subscribed)
        assert any("MQTT V311" in line for line in child.lines)
        async with aiomqtt.Client("127.0.0.1", port, identifier="vm-0009") as client:
            for seq in range(1, 11):
                item = sale(seq, "vm-0009")
                await client.publish(item.topic, item.payload, qos=1)
        engine = make_engine(db)
        try:
            await wait_until(lambda: rows(engine, events) == 10, "10 events via amqtt")
        finally:
            engine.dispose()
    finally:
        assert child.stop() == 0, "".join(child.lines)
