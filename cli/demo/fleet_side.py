"""The fleet half of the demo, in this process: the broker (embedded amqtt unless one is
given) and the fleet service ingesting into the demo database.

The embedded broker can be stopped and started again on the same port, which is how the
demo shows an outage: machines keep selling into their outboxes, the fleet reconnects,
gaps are found and resynced, and nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from fleet.broker import embedded_broker
from fleet.commands import register_machine
from fleet.einvoice import LocalProvider, Sender
from fleet.mqtt import BrokerAddress, Protocol
from fleet.service import FleetService, ServiceOptions
from fleet.store.schema import upgrade

log = logging.getLogger(__name__)


class DemoBroker:
    """The embedded broker, restartable; or nothing when an external one is used."""

    def __init__(self, address: BrokerAddress, *, embedded: bool) -> None:
        self.address = address
        self.embedded = embedded
        self._stack: contextlib.AsyncExitStack | None = None
        self.up = False

    async def start(self) -> None:
        if not self.embedded or self.up:
            self.up = True
            return
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(embedded_broker(self.address))
        self._stack = stack
        self.up = True

    async def stop(self) -> None:
        self.up = False
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()


class DemoFleet:
    """Fleet service task + broker; machines are registered with their command keys."""

    def __init__(self, engine: Engine, broker: DemoBroker, receipts: Path) -> None:
        """``receipts``: the folder the e-receipts go to (the local provider, for a
        fleet without an e-invoice provider contract)."""
        self.engine = engine
        self.broker = broker
        self.service = FleetService(
            engine,
            broker.address,
            ServiceOptions(
                group="demo",
                share=False,  # one worker: its persistent session queues across outages
                client_id="vendfleet-demo-fleet",
                # amqtt speaks 3.1.1 only; an external broker gets the v5 attempt first.
                protocol=Protocol.V311 if broker.embedded else Protocol.AUTO,
                sweep_interval=1.0,
                resync_grace=timedelta(seconds=2),
                sweep_grace=timedelta(seconds=2),
            ),
            sender=Sender(engine, LocalProvider(receipts)),
        )
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def migrate(self, machines: dict[str, bytes]) -> None:
        upgrade(self.engine)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            for machine_id, key in machines.items():
                register_machine(conn, machine_id, key, now)

    async def start(self) -> None:
        await self.broker.start()
        self._task = asyncio.create_task(self.service.run(self._stop), name="fleet-service")
        await asyncio.wait_for(self.service.connected.wait(), 30)

    async def outage(self, seconds: float) -> None:
        """Take the broker away for ``seconds`` (embedded broker only)."""
        await self.broker.stop()
        try:
            await asyncio.sleep(seconds)
        finally:
            await self.broker.start()  # even when the demo ends mid-outage

    @property
    def failed(self) -> BaseException | None:
        if self._task is not None and self._task.done() and not self._task.cancelled():
            return self._task.exception()
        return None

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 30)
            except TimeoutError:
                self._task.cancel()
        await self.broker.stop()
