"""The machine's MQTT link: store-and-forward drain, online status and fleet commands.

The only controller module that imports the MQTT client library (aiomqtt 2.x).

* **Drain.** Rows of the journal's outbox are published in ``seq`` order at QoS 1, up to
  ``drain_concurrency`` awaiting their PUBACK at once; a row is marked sent only after
  its PUBACK. After a reconnect unsent rows are simply published again (the fleet
  dedupes on machine + seq). The drain is its own task reading the journal: a sale never
  waits for, or fails because of, the broker.
* **Connection.** MQTT 5, client id and username = machine id, a persistent session (so
  commands sent while the machine was offline still arrive; their expiry and the replay
  guard keep that safe). The retained will says offline; right after connecting the
  machine publishes a retained online status, and before a clean disconnect (which
  suppresses the will) a retained offline status. aiomqtt 2.x never reconnects by itself:
  :meth:`Telemetry.run` loops with exponential backoff and jitter.
* **Maintenance.** Every few seconds, connected or not: rows sent more than
  ``retention_days`` ago are deleted (unsent rows never are), and the ``outbox_backlog``
  alarm is raised when more than ``backlog_alarm`` rows wait and cleared once the backlog
  is down to half of that (the gap keeps it from flapping).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller.config import TelemetrySection
from controller.journal import Journal, OutboxRow
from controller.outbox import backlog_alarm, message_for
from protocols.telemetry import (
    QOS,
    Kind,
    StatusBody,
    command_filter,
    encode,
    make_envelope,
    topic_for,
)
from protocols.telemetry.envelope import ENVELOPES

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
StatusSource = Callable[[bool, int], StatusBody]  # (online, backlog) -> body
CommandSink = Callable[[str, bytes], Awaitable[None]]

BACKLOG_ALARM_KEY = "outbox_backlog_alarm"
SESSION_EXPIRY = 24 * 3600  # seconds the broker keeps our session (queued commands)
MAINTENANCE_PERIOD = 5.0
PRUNE_PERIOD = 600.0
IDLE_POLL = 5.0  # the drain also looks for rows this often without being woken
BACKOFF_BASE = 0.5
GOODBYE_TIMEOUT = 3.0


def backoff_delay(attempt: int, cap: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random, at most ``cap``."""
    ceiling = min(cap, math.ldexp(BACKOFF_BASE, min(attempt, 30)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class Telemetry:
    def __init__(
        self,
        *,
        machine_id: str,
        settings: TelemetrySection,
        journal: Journal,
        status: StatusSource,
        on_command: CommandSink,
        wall: Clock,
    ) -> None:
        self.machine_id = machine_id
        self.settings = settings
        self.journal = journal
        self.status = status
        self.on_command = on_command
        self.wall = wall
        self.connected = False
        self._was_connected = False
        self._closing = False
        self.backlog = 0
        self._drain_wake = asyncio.Event()
        self._maintain_wake = asyncio.Event()
        self._sent = asyncio.Condition()
        self._rng = random.Random()  # noqa: S311 -- jitter, not secrets

    def wake(self) -> None:
        """New outbox rows were committed: publish them now rather than at the next poll."""
        self._drain_wake.set()
        self._maintain_wake.set()

    async def wait_sent(self, seq: int, timeout: float) -> bool:
        """Wait until outbox row ``seq`` was acknowledged by the broker (or ``timeout``)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._sent:
                while not await self.journal.run(lambda: self.journal.is_sent(seq)):
                    await self._sent.wait()
                return True
        return False

    async def run(self) -> None:
        """Forever: keep the outbox in shape and stay connected (reconnecting with backoff)."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._maintain())
            await self._connect_forever()

    # --- connection ---------------------------------------------------------------------

    async def _connect_forever(self) -> None:
        attempt = 0
        while True:
            try:
                await self._session()
            except* (aiomqtt.MqttError, OSError) as group:
                reasons = "; ".join(str(e) for e in group.exceptions)
                log.warning("telemetry: broker %s: %s", self.settings.broker, reasons)
            if self._closing:
                # A failed disconnect during shutdown must not swallow the cancellation.
                raise asyncio.CancelledError
            if self._was_connected:
                attempt = 0
            delay = backoff_delay(attempt, self.settings.max_backoff, self._rng)
            attempt += 1
            log.info("telemetry: reconnecting in %.1f s", delay)
            await asyncio.sleep(delay)

    def _status_payload(self, online: bool, seq: int) -> bytes:
        body = self.status(online, self.backlog)
        envelope = make_envelope(
            body, machine_id=self.machine_id, boot_id=self.journal.boot, seq=seq, ts=self.wall()
        )
        return encode(envelope)

    async def _session(self) -> None:
        self._was_connected = False
        status_topic = topic_for(self.machine_id, Kind.STATUS)
        last_seq = await self.journal.run(self.journal.last_outbox_seq)
        self.backlog = await self.journal.run(self.journal.backlog)
        will = aiomqtt.Will(
            status_topic, self._status_payload(online=False, seq=last_seq), qos=QOS, retain=True
        )
        s = self.settings
        session: dict[str, Any]
        if s.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY
            session = {
                "protocol": aiomqtt.ProtocolVersion.V5,
                "clean_start": False,
                "properties": properties,
            }
        else:
            session = {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": False}
        async with aiomqtt.Client(
            s.host,
            s.port,
            username=self.machine_id,
            password=s.password or None,
            identifier=self.machine_id,
            will=will,
            keepalive=s.keepalive,
            **session,
        ) as client:
            self._was_connected = self.connected = True
            client.pending_calls_threshold = s.drain_concurrency + 10
            log.info("telemetry: connected to %s", s.broker)
            try:
                online = self._status_payload(online=True, seq=last_seq)
                await client.publish(status_topic, online, qos=QOS, retain=True)
                await client.subscribe(command_filter(self.machine_id), qos=QOS)
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._drain(client))
                    tg.create_task(self._receive(client))
            except asyncio.CancelledError:
                self._closing = True
                await self._goodbye(client, status_topic)
                raise
            finally:
                self.connected = False

    async def _goodbye(self, client: aiomqtt.Client, topic: str) -> None:
        """A clean DISCONNECT suppresses the will, so say offline ourselves first."""
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError, OSError):
            last_seq = await self.journal.run(self.journal.last_outbox_seq)
            offline = self._status_payload(online=False, seq=last_seq)
            async with asyncio.timeout(GOODBYE_TIMEOUT):
                await client.publish(topic, offline, qos=QOS, retain=True)
            log.info("telemetry: offline status published")

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            try:
                await self.on_command(message.topic.value, bytes(message.payload))
            except Exception:
                log.exception("telemetry: command on %s failed", message.topic)

    # --- the drain ----------------------------------------------------------------------

    async def _drain(self, client: aiomqtt.Client) -> None:
        limit = self.settings.drain_concurrency
        while True:
            self._drain_wake.clear()
            rows = await self.journal.run(lambda: self.journal.unsent(limit))
            if not rows:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(IDLE_POLL):
                        await self._drain_wake.wait()
                continue
            # Publishing in one go keeps them in seq order on the wire; each call returns
            # on its own PUBACK.
            results = await asyncio.gather(
                *(self._publish(client, row) for row in rows), return_exceptions=True
            )
            acked = [row.seq for row, result in zip(rows, results, strict=True) if result is None]
            if acked:
                await self.journal.run(partial(self.journal.mark_sent, acked, self.wall()))
                self._maintain_wake.set()  # refresh the backlog figure
                async with self._sent:
                    self._sent.notify_all()
            for result in results:
                if isinstance(result, BaseException):
                    raise result  # lost the connection: reconnect, then publish the rest again

    async def _publish(self, client: aiomqtt.Client, row: OutboxRow) -> None:
        try:
            topic, payload = topic_for(self.machine_id, row.kind), self._envelope(row)
        except ValueError:
            # Only a bug could store a body that does not validate; it must not block the
            # rows behind it, so it is logged and counted as sent.
            log.exception("telemetry: outbox row %s cannot be published", row.seq)
            return
        await client.publish(topic, payload, qos=QOS)

    def _envelope(self, row: OutboxRow) -> bytes:
        cls = ENVELOPES[Kind(row.kind)]
        envelope = cls.model_validate(
            {
                "machine_id": self.machine_id,
                "boot_id": row.boot,
                "seq": row.seq,
                "msg_id": cls.expected_msg_id(self.machine_id, row.boot, row.seq),
                "ts": row.created,
                "body": json.loads(row.body),
            }
        )
        return encode(envelope)

    # --- maintenance --------------------------------------------------------------------

    async def _maintain(self) -> None:
        journal = self.journal
        raised = await journal.run(lambda: journal.get_meta(BACKLOG_ALARM_KEY)) is not None
        loop = asyncio.get_running_loop()
        next_prune = loop.time()
        threshold = self.settings.backlog_alarm
        while True:
            self._maintain_wake.clear()
            self.backlog = await journal.run(journal.backlog)
            change = None
            if not raised and self.backlog > threshold:
                change = True
            elif raised and self.backlog <= threshold // 2:
                change = False
            if change is not None:
                raised = change
                body = backlog_alarm(raised, self.backlog, threshold)
                meta = {BACKLOG_ALARM_KEY: "raised" if raised else None}
                alarm = partial(journal.enqueue, [message_for(body)], self.wall(), meta)
                await journal.run(alarm)
                self._drain_wake.set()
                log.warning("telemetry: outbox backlog %s: %s", body.state.value, body.detail)
            if loop.time() >= next_prune:
                horizon = self.wall() - timedelta(days=self.settings.retention_days)
                pruned = await journal.run(partial(journal.prune_sent, horizon))
                if pruned:
                    log.info("telemetry: pruned %s sent outbox rows", pruned)
                next_prune = loop.time() + PRUNE_PERIOD
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(MAINTENANCE_PERIOD):
                    await self._maintain_wake.wait()
