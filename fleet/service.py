"""The serve loop: MQTT in, batches into the database, PUBACK after commit, commands out.

Per connection three tasks run: a reader that queues what arrives, a writer that takes up
to ``batch_size`` messages (waiting ``linger`` seconds for more), stores them in one
transaction on a database thread, acknowledges them and publishes any commands the batch
issued, and a sweeper that publishes commands nobody published yet (their worker died).
While the database thread works on one batch the reader keeps receiving the next.

Several processes with the same ``group`` split the event topics through MQTT 5 shared
subscriptions; statuses are subscribed unshared (each worker sees them, the duplicate
inserts are no-ops) so the retained status of every machine reaches a new database. When
the broker goes away the loop reconnects with exponential backoff and jitter; nothing is
lost, because messages are acknowledged only after their commit and the session is
persistent.

With a ``sender`` (fleet.einvoice.Sender) the service also transmits the e-receipts that
ingest queued, for the whole life of :meth:`FleetService.run` and independent of the broker
connection: receipts keep going out while the broker is away. Without one they stay
queued (``vend audit receipts`` shows them) for another process to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from fleet.commands import DEFAULT_TTL, OutgoingCommand, mark_published, unpublished
from fleet.einvoice.sender import Sender
from fleet.ingest import Ingestor, IngestReport, Received, utc_now
from fleet.mqtt import (
    Backoff,
    BrokerAddress,
    BrokerError,
    BrokerUnreachableError,
    Inbound,
    MqttLink,
    Protocol,
    connect,
)
from fleet.resync import request_due_resyncs
from protocols.telemetry import Kind, command_topic, fleet_filters

log = logging.getLogger(__name__)
EVENT_KINDS = tuple(kind for kind in Kind if kind is not Kind.STATUS)


@dataclass(frozen=True)
class ServiceOptions:
    group: str = "ingest"
    # Split event topics with the group (MQTT 5). Mosquitto 2.0.11 does not keep queuing
    # shared-subscription messages for an offline session after a broker restart; a
    # single unshared worker gets them all on reconnect.
    share: bool = True
    client_id: str | None = None  # default: vendfleet-<group>-<hostname>; unique per process
    protocol: Protocol = Protocol.AUTO
    batch_size: int = 200
    linger: float = 0.01
    resync_ttl: timedelta = DEFAULT_TTL
    # Gaps younger than this may be two workers committing out of order: wait before
    # asking the machine to re-send. Zero asks at once, from the batch that found it.
    resync_grace: timedelta = timedelta(seconds=3)
    sweep_interval: float = 5.0
    sweep_grace: timedelta = timedelta(seconds=5)  # leave fresh commands to their worker
    # On stop, how long the receipt sender may take to record the answers in flight; a
    # send cut short is retaken when its lease runs out (same idempotency key).
    receipts_grace: float = 5.0


@dataclass
class ServiceStats:
    received: int = 0
    batches: int = 0
    connects: int = 0
    commands_published: int = 0
    report: IngestReport = field(default_factory=IngestReport)


class DatabaseUnavailableError(Exception):
    """The database stopped answering; the service drops the broker connection so what
    it had not stored is redelivered later."""


class FleetService:
    def __init__(
        self,
        engine: Engine,
        broker: BrokerAddress,
        options: ServiceOptions | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        sender: Sender | None = None,
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.options = options or ServiceOptions()
        self.clock = clock
        self.sender = sender
        self.client_id = self.options.client_id or (
            f"vendfleet-{self.options.group}-{socket.gethostname()}"
        )
        self.ingestor = Ingestor(
            engine,
            resync_ttl=self.options.resync_ttl,
            resync_at_once=not self.options.resync_grace,
            clock=clock,
        )
        self.stats = ServiceStats()
        self.connected = asyncio.Event()  # set while subscribed
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fleet-db")

    async def run(self, stop: asyncio.Event | None = None, *, fail_fast: bool = False) -> None:
        """Serve until ``stop`` is set. With ``fail_fast`` a first connection that fails
        raises BrokerUnreachableError instead of retrying."""
        stop = stop or asyncio.Event()
        backoff = Backoff()
        receipts_stop = asyncio.Event()
        receipts = None
        if self.sender is not None:
            receipts = asyncio.create_task(self.sender.run(receipts_stop), name="receipts")
        try:
            while not stop.is_set():
                try:
                    async with connect(
                        self.broker, client_id=self.client_id, protocol=self.options.protocol
                    ) as link:
                        backoff.reset()
                        self.stats.connects += 1
                        await self._serve(link, stop)
                except BrokerUnreachableError as exc:
                    if fail_fast and self.stats.connects == 0:
                        raise
                    log.warning("%s", exc)
                except (BrokerError, DatabaseUnavailableError) as exc:
                    log.warning("connection ended: %s", exc)
                finally:
                    self.connected.clear()
                if not stop.is_set():
                    delay = backoff.next_delay()
                    log.info("reconnecting in %.1f s", delay)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
        finally:
            receipts_stop.set()
            if receipts is not None:
                await self._stop_sender(receipts)
            self._db.shutdown(wait=True)

    async def _stop_sender(self, task: asyncio.Task[None]) -> None:
        done, _ = await asyncio.wait({task}, timeout=self.options.receipts_grace)
        if not done:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _serve(self, link: MqttLink, stop: asyncio.Event) -> None:
        share = self.options.share and link.shared_subscriptions
        group = self.options.group if share else None
        await link.subscribe(
            [*fleet_filters((Kind.STATUS,)), *fleet_filters(EVENT_KINDS, group=group)]
        )
        log.info(
            "subscribed at %s as %s (MQTT %s%s)",
            self.broker,
            self.client_id,
            link.protocol.name,
            f", shared group {group!r}" if group else "",
        )
        self.connected.set()
        queue: asyncio.Queue[Inbound] = asyncio.Queue()
        tasks = [
            asyncio.create_task(self._read(link, queue)),
            asyncio.create_task(self._write(link, queue)),
            asyncio.create_task(self._sweep(link)),
            asyncio.create_task(stop.wait()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raise what ended the connection
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self, link: MqttLink, queue: asyncio.Queue[Inbound]) -> None:
        async for inbound in link.messages():
            self.stats.received += 1
            queue.put_nowait(inbound)
        raise BrokerError("the broker closed the message stream")

    async def _write(self, link: MqttLink, queue: asyncio.Queue[Inbound]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            self._drain(queue, batch)
            if len(batch) < self.options.batch_size and self.options.linger > 0:
                # One short wait for stragglers, instead of a timed get per message.
                await asyncio.sleep(self.options.linger)
                self._drain(queue, batch)
            now = self.clock()
            received = [Received(m.topic, m.payload, now) for m in batch]
            try:
                report = await loop.run_in_executor(self._db, self.ingestor.ingest, received)
            except OperationalError as exc:
                raise DatabaseUnavailableError(f"database unavailable: {exc.orig}") from None
            for inbound in batch:
                link.ack(inbound)
            self.stats.batches += 1
            self.stats.report.add(report)
            if report.commands:
                await self._publish(link, report.commands)

    def _drain(self, queue: asyncio.Queue[Inbound], batch: list[Inbound]) -> None:
        while len(batch) < self.options.batch_size and not queue.empty():
            batch.append(queue.get_nowait())

    async def _sweep(self, link: MqttLink) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.options.sweep_interval)
            now = self.clock()
            try:
                pending = await loop.run_in_executor(self._db, self._due_commands, now)
            except OperationalError as exc:
                log.warning("command sweep skipped: %s", exc.orig)
                continue
            if pending:
                log.info("publishing %d command(s)", len(pending))
                await self._publish(link, pending)

    def _due_commands(self, now: datetime) -> list[OutgoingCommand]:
        """Resyncs now due, and commands whose worker never published them."""
        with self.engine.begin() as conn:
            fresh = request_due_resyncs(
                conn, now=now, grace=self.options.resync_grace, ttl=self.options.resync_ttl
            )
            pending = unpublished(conn, now)
        cutoff = now - self.options.sweep_grace
        return [*fresh, *(c for c in pending if c.issued_at <= cutoff)]

    async def _publish(self, link: MqttLink, outgoing: list[OutgoingCommand]) -> None:
        now = self.clock()
        sent = []
        for command in outgoing:
            remaining = int((command.expires_at - now).total_seconds())
            if remaining <= 0:
                continue
            await link.publish(
                command_topic(command.machine_id, command.name),
                command.payload,
                expiry_s=remaining,
            )
            sent.append(command.id)
        self.stats.commands_published += len(sent)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._db, self._mark_published, sent, now)

    def _mark_published(self, ids: list[str], now: datetime) -> None:
        with self.engine.begin() as conn:
            mark_published(conn, ids, now)
