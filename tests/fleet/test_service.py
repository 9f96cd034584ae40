"""The fleet service against a real Mosquitto (and SQLite / PostgreSQL): messages become
rows, resyncs go out signed, the service survives a broker restart."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import Engine, func, select

from fleet.commands import register_machine
from fleet.ingest import Received
from fleet.mqtt import BrokerAddress
from fleet.service import FleetService, ServiceOptions
from fleet.store.db import make_engine
from fleet.store.models import commands, events, gaps, machines, quarantine, sales, status_reports
from fleet.store.schema import upgrade
from protocols.telemetry import (
    AckOutcome,
    CommandAckBody,
    ReplayGuard,
    Resync,
    command_filter,
    decode_command,
    verify,
)
from tests.fleet.conftest import KEY, T0, body, message, sale
from tests.support.servers import Broker, mosquitto_binary, run_mosquitto, wait_for_port

pytestmark = pytest.mark.broker
DEADLINE = 30.0  # seconds before a wait gives up (a failure, not a timing assert)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def options(**changes: object) -> ServiceOptions:
    base = {"group": unique("g"), "client_id": unique("fleet"), "sweep_interval": 0.5}
    return ServiceOptions(**{**base, **changes})  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def serving(service: FleetService) -> AsyncIterator[FleetService]:
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.wait_for(service.connected.wait(), DEADLINE)
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)


async def publish(broker: Broker, user: str, batch: Sequence[Received]) -> None:
    async with aiomqtt.Client(
        broker.host, broker.port, username=user, password=broker.users[user]
    ) as client:
        for item in batch:
            await client.publish(item.topic, item.payload, qos=1)


def scalar(engine: Engine, stmt: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(stmt).scalar_one()


async def wait_until(check: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not await asyncio.to_thread(check):
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


def rows(engine: Engine, table: Any) -> int:
    return int(scalar(engine, select(func.count()).select_from(table)))


async def test_published_messages_become_rows(engine: Engine, mosquitto: Broker) -> None:
    service = FleetService(engine, BrokerAddress.from_url(mosquitto.url("fleet")), options())
    batch = [sale(seq) for seq in range(1, 51)]
    batch.insert(10, Received("vend/v1/vm-0001/sale", b"{not json", T0))
    batch.append(message(body("status"), 50))
    async with serving(service):
        await publish(mosquitto, "vm-0001", batch)
        await wait_until(lambda: rows(engine, events) == 50, "50 events")
        await wait_until(lambda: rows(engine, quarantine) == 1, "the garbage in quarantine")
        await wait_until(lambda: rows(engine, status_reports) >= 1, "the status")
    assert rows(engine, sales) == 50
    assert scalar(engine, select(machines.c.last_seq).where(machines.c.id == "vm-0001")) == 50
    assert scalar(engine, select(quarantine.c.payload)) == b"{not json"


async def test_a_gap_sends_a_signed_resync_and_the_ack_comes_back(
    engine: Engine, mosquitto: Broker
) -> None:
    machine = "vm-0002"
    with engine.begin() as conn:
        register_machine(conn, machine, KEY, T0)
    service = FleetService(
        engine,
        BrokerAddress.from_url(mosquitto.url("fleet")),
        options(resync_grace=timedelta(0)),
    )
    got: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()
    async with (
        serving(service),
        aiomqtt.Client(
            mosquitto.host,
            mosquitto.port,
            username=machine,
            password=mosquitto.users[machine],
            protocol=aiomqtt.ProtocolVersion.V5,
        ) as vm,
    ):
        await vm.subscribe(command_filter(machine), qos=1)

        async def collect() -> None:
            async for m in vm.messages:
                got.put_nowait(m)

        reader = asyncio.create_task(collect())
        await publish(mosquitto, machine, [sale(1, machine), sale(4, machine)])
        received = await asyncio.wait_for(got.get(), DEADLINE)
        assert str(received.topic) == f"vend/v1/{machine}/cmd/resync"
        command = decode_command(str(received.topic), bytes(received.payload))
        assert isinstance(command, Resync)
        assert command.args.after_seq == 1
        verdict = verify(
            command, key=KEY, machine_id=machine, now=command.issued_at, guard=ReplayGuard()
        )
        assert verdict.ok, verdict.reason
        ack = CommandAckBody(command_id=command.id, name="resync", outcome=AckOutcome.APPLIED)
        await publish(
            mosquitto, machine, [message(ack, 5, machine), sale(2, machine), sale(3, machine)]
        )
        await wait_until(
            lambda: scalar(engine, select(commands.c.ack_outcome)) == "applied", "the ack"
        )
        await wait_until(
            lambda: (
                rows(engine, events) == 5
                and scalar(engine, select(func.count()).where(gaps.c.filled_at.is_(None))) == 0
            ),
            "the gap filled",
        )
        reader.cancel()
    assert scalar(engine, select(commands.c.published_at)) is not None
    assert rows(engine, commands) == 1


@pytest.mark.parametrize("share", [True, False], ids=["shared", "unshared"])
async def test_service_reconnects_after_a_broker_restart(tmp_path: Path, share: bool) -> None:
    folder = Path(tempfile.mkdtemp(prefix="vendfleet-restart-"))
    users = {"fleet": "fleet-secret", "vm-0003": "pw-0003"}
    engine_url = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    engine = make_engine(engine_url)
    upgrade(engine)
    second: subprocess.Popen[bytes] | None = None
    try:
        with run_mosquitto(folder, users) as broker:
            service = FleetService(
                engine, BrokerAddress.from_url(broker.url("fleet")), options(share=share)
            )
            stop = asyncio.Event()
            task = asyncio.create_task(service.run(stop))
            await asyncio.wait_for(service.connected.wait(), DEADLINE)
            await publish(broker, "vm-0003", [sale(n, "vm-0003") for n in range(1, 21)])
            await wait_until(lambda: rows(engine, events) == 20, "the first 20")
        # The broker is gone; bring the same one back (same port, same persistence).
        await wait_until(lambda: not service.connected.is_set(), "the service to notice")
        second = subprocess.Popen(
            [mosquitto_binary(), "-c", str(folder / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await asyncio.to_thread(wait_for_port, broker.port, 10.0, second)
        if share:
            # Mosquitto 2.0.11 drops shared-subscription messages for sessions that are
            # offline after a restart, so publish once the service is back. Unshared, the
            # persistent session queues them while the service is still reconnecting.
            await asyncio.wait_for(service.connected.wait(), DEADLINE)
        await publish(broker, "vm-0003", [sale(n, "vm-0003") for n in range(21, 41)])
        await wait_until(lambda: rows(engine, events) == 40, "the next 20 after the restart")
        assert service.stats.connects >= 2
        stop.set()
        await asyncio.wait_for(task, DEADLINE)
    finally:
        if second is not None:
            second.terminate()
            second.wait(10)
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)
    assert rows(engine, gaps) == 0
