"""controller.telemetry against a real Mosquitto and a real SQLite journal (in process)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.config import TelemetrySection
from controller.journal import Journal
from controller.outbox import message_for
from controller.telemetry import Telemetry, backoff_delay
from protocols.telemetry import (
    AlarmBody,
    AlarmCode,
    AlarmEnvelope,
    AlarmState,
    Kind,
    Severity,
    StatusBody,
    StatusEnvelope,
)
from tests.controller.mqtt_fleet import eventually, fleet
from tests.support.servers import Broker, free_port, run_mosquitto

pytestmark = [pytest.mark.broker]

T0 = datetime(2025, 3, 14, 2, 30, tzinfo=UTC)
KEY = "hex:" + "11" * 16


def _alarm(n: int) -> AlarmBody:
    return AlarmBody(
        code=AlarmCode.OTHER, state=AlarmState.RAISED, severity=Severity.INFO, detail=f"row {n}"
    )


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.sqlite")
    j.open()
    yield j
    j.close()


def _settings(broker: Broker | str, machine_id: str, **extra: Any) -> TelemetrySection:
    url = broker if isinstance(broker, str) else broker.url()
    password = "" if isinstance(broker, str) else broker.users[machine_id]
    return TelemetrySection(
        broker=url, password=password, command_key=KEY, max_backoff=1.0, **extra
    )


def _status(online: bool, backlog: int) -> StatusBody:
    return StatusBody(
        online=online, firmware="test", config_version="7", started_at=T0, outbox_backlog=backlog
    )


async def _ignore(_topic: str, _payload: bytes) -> None:
    return None


@contextlib.asynccontextmanager
async def running(
    journal: Journal, settings: TelemetrySection, machine_id: str
) -> AsyncIterator[Telemetry]:
    tel = Telemetry(
        machine_id=machine_id,
        settings=settings,
        journal=journal,
        status=_status,
        on_command=_ignore,
        wall=lambda: datetime.now(UTC),
    )
    task = asyncio.create_task(tel.run())
    try:
        yield tel
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _enqueue(journal: Journal, tel: Telemetry | None, first: int, last: int) -> None:
    rows = [message_for(_alarm(n)) for n in range(first, last + 1)]
    await journal.run(lambda: journal.enqueue(rows, T0))
    if tel is not None:
        tel.wake()


def _details(envelopes: list[Any]) -> list[str]:
    return [e.body.detail for e in envelopes if isinstance(e, AlarmEnvelope)]


async def test_drain_publishes_every_row_in_order_and_marks_them_sent(
    journal: Journal, mosquitto: Broker
) -> None:
    await _enqueue(journal, None, 1, 60)
    async with fleet(mosquitto, "vm-0002") as got:
        async with running(
            journal, _settings(mosquitto, "vm-0002", drain_concurrency=8), "vm-0002"
        ):
            await eventually(lambda: len(got.events()) >= 60)
            await eventually(lambda: journal.backlog() == 0)
        events = got.events()
        assert [e.seq for e in events] == list(range(1, 61))
        assert [e.msg_id for e in events[:2]] == ["vm-0002:1", "vm-0002:2"]
        assert _details(events) == [f"row {n}" for n in range(1, 61)]
        assert {e.boot_id for e in events} == {journal.boot}
        statuses = got.of(Kind.STATUS)
        assert isinstance(statuses[0], StatusEnvelope)
        assert statuses[0].body.online is True
        # A clean stop says offline itself (the will is not sent after a DISCONNECT).
        await eventually(lambda: any(not s.body.online for s in got.of(Kind.STATUS)))  # type: ignore[union-attr]
    assert journal.backlog() == 0


async def test_retained_status_shows_the_last_word(journal: Journal, mosquitto: Broker) -> None:
    async with running(journal, _settings(mosquitto, "vm-0003"), "vm-0003") as tel:
        await eventually(lambda: tel.connected)
        async with fleet(mosquitto, "vm-0003") as got:
            await eventually(lambda: got.of(Kind.STATUS))
            assert got.retained[0] is True
            assert got.of(Kind.STATUS)[0].body.online is True  # type: ignore[union-attr]
    async with fleet(mosquitto, "vm-0003") as got:
        await eventually(lambda: got.of(Kind.STATUS))
        (status,) = got.of(Kind.STATUS)
        assert isinstance(status, StatusEnvelope)
        assert status.body.online is False
        assert status.body.config_version == "7"


@contextlib.contextmanager
def _broker_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="vendfleet-sf-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def test_store_and_forward_across_a_broker_restart(journal: Journal) -> None:
    users = {"fleet": "fleet-pw", "vm-0004": "vm-pw"}
    port = free_port()
    settings = TelemetrySection(
        broker=f"mqtt://127.0.0.1:{port}", password="vm-pw", command_key=KEY, max_backoff=1.0
    )
    with _broker_folder() as folder:
        async with running(journal, settings, "vm-0004") as tel:
            with run_mosquitto(folder, users, port=port) as broker:
                async with fleet(broker, "vm-0004", identifier="fleet-sf") as got:
                    await _enqueue(journal, tel, 1, 5)
                    await eventually(lambda: journal.backlog() == 0)
            # Broker gone: the machine keeps journaling; nothing is lost or marked sent.
            await _enqueue(journal, tel, 6, 30)
            await asyncio.sleep(0.5)
            assert await journal.run(journal.backlog) == 25
            with run_mosquitto(folder, users, port=port) as broker:
                async with fleet(broker, "vm-0004", identifier="fleet-sf") as got:
                    await eventually(lambda: len(got.events()) >= 25, timeout=20)
                    await eventually(lambda: journal.backlog() == 0)
        # The broker may deliver the fleet's unacknowledged rows 1-5 again (QoS 1): the
        # fleet dedupes on seq. Everything journaled during the outage arrives, in order.
        after = [e for e in got.events() if e.seq > 5]
        assert [e.seq for e in after] == list(range(6, 31))
        assert _details(after) == [f"row {n}" for n in range(6, 31)]


async def test_backlog_alarm_is_raised_offline_and_cleared_once_drained(
    journal: Journal, mosquitto: Broker
) -> None:
    nobody = f"mqtt://127.0.0.1:{free_port()}"
    offline = TelemetrySection(broker=nobody, command_key=KEY, backlog_alarm=5, max_backoff=1.0)
    async with running(journal, offline, "vm-0005") as tel:
        await _enqueue(journal, tel, 1, 8)
        await eventually(lambda: journal.backlog() == 9)  # 8 rows + the alarm itself
    async with fleet(mosquitto, "vm-0005") as got:
        settings = _settings(mosquitto, "vm-0005", backlog_alarm=5)
        async with running(journal, settings, "vm-0005"):
            await eventually(lambda: len(got.events()) >= 10)
        alarms = [e.body for e in got.events() if isinstance(e, AlarmEnvelope)]
        backlog = [(a.state, a.detail) for a in alarms if a.code is AlarmCode.OUTBOX_BACKLOG]
        assert [state for state, _ in backlog] == [AlarmState.RAISED, AlarmState.CLEARED]
        assert backlog[0][1].startswith("8 messages unsent")
        assert [e.seq for e in got.events()] == list(range(1, 11))


def test_retention_deletes_only_old_sent_rows_and_seqs_never_repeat(journal: Journal) -> None:
    seqs = journal.enqueue([message_for(_alarm(n)) for n in range(4)], T0)
    assert seqs == [1, 2, 3, 4]
    journal.mark_sent([1, 2], T0)
    journal.mark_sent([3], T0 + timedelta(days=40))
    assert journal.prune_sent(T0 + timedelta(days=10)) == 2
    assert [row.seq for row in journal.unsent(10)] == [4]  # unsent: kept however old
    assert journal.backlog() == 1
    assert journal.is_sent(3)
    assert not journal.is_sent(4)
    assert journal.enqueue([message_for(_alarm(5))], T0) == [5]
    assert journal.last_outbox_seq() == 5


def test_outbox_rows_and_meta_commit_with_their_journal_row(journal: Journal) -> None:
    from protocols.vend import inputs as i  # noqa: PLC0415

    journal.append(
        i.JournalStarted(id_base=7), T0, [message_for(_alarm(1))], {"k": "v", "gone": None}
    )
    assert journal.get_meta("k") == "v"
    (row,) = journal.unsent(5)
    assert (row.seq, row.kind, row.boot) == (1, "alarm", journal.boot)
    with pytest.raises(ZeroDivisionError):
        journal.enqueue_with(lambda _db: (_ for _ in ()).throw(ZeroDivisionError), T0)
    assert journal.backlog() == 1


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    import random  # noqa: PLC0415

    rng = random.Random(1)
    delays = [backoff_delay(n, 60.0, rng) for n in range(12)]
    assert all(0.25 <= d <= 60.0 for d in delays)
    assert delays[-1] >= 30.0  # capped at 60, never below half the cap
    assert delays[0] <= 0.5
