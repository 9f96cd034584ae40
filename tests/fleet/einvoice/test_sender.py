"""The sender draining the queue into the HTTP provider against a real local server that
fails, hangs, drops answers and rejects: every receipt ends accepted exactly once at the
provider, or rejected/failed in the queue, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from fleet.einvoice import (
    HttpProvider,
    QueuedReceipt,
    QueueState,
    RetryPolicy,
    Sender,
    Submission,
    claim,
    enqueue,
    list_receipts,
    retry,
)
from fleet.einvoice.provider import ProviderResult
from tests.fleet.einvoice.fake_provider import FakeProvider
from tests.fleet.einvoice.support import T0, Clock, outgoing

TIMEOUT = 0.5
POLICY = RetryPolicy(
    base=timedelta(seconds=5), cap=timedelta(minutes=10), max_attempts=5, lease=timedelta(minutes=1)
)


@pytest.fixture
async def server() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(hang_seconds=TIMEOUT * 6) as fake:
        yield fake


def _sender(
    engine: Engine, server: FakeProvider, clock: Clock, *, concurrency: int = 4, batch: int = 16
) -> Sender:
    provider = HttpProvider(server.url, timeout=TIMEOUT, name="fake")
    return Sender(
        engine,
        provider,
        concurrency=concurrency,
        batch=batch,
        policy=POLICY,
        clock=clock,
        rng=random.Random(1),
    )


def _enqueue(engine: Engine, numbers: range) -> None:
    with engine.begin() as conn:
        for n in numbers:
            enqueue(conn, outgoing(n), T0)


async def _settle(sender: Sender, clock: Clock, rounds: int = 12) -> None:
    """Drain, then step past every backoff, until nothing is left to send."""
    for _ in range(rounds):
        await sender.drain()
        clock.advance(POLICY.cap.total_seconds())


def _rows(engine: Engine) -> dict[str, QueuedReceipt]:
    with engine.connect() as conn:
        return {row.key.number: row for row in list_receipts(conn)}


async def test_every_misbehaviour_ends_accepted_exactly_once(
    engine: Engine, server: FakeProvider
) -> None:
    _enqueue(engine, range(1, 7))
    server.plan(outgoing(1).idempotency_key, "fail", "fail", "fail")
    server.plan(outgoing(2).idempotency_key, "hang")
    server.plan(outgoing(3).idempotency_key, "drop")
    server.plan(outgoing(4).idempotency_key, "throttle", "garbage")
    server.plan(outgoing(5).idempotency_key, "drop", "fail", "drop")
    clock = Clock()
    await _settle(_sender(engine, server, clock), clock)

    rows = _rows(engine)
    assert {n: r.state for n, r in rows.items()} == {
        str(n): QueueState.ACCEPTED for n in range(1, 7)
    }
    assert server.records == {f"vm-0001/1C26MAA/{n}": 1 for n in range(1, 7)}
    for number, row in rows.items():
        stored = server.stored[outgoing(int(number)).idempotency_key]
        assert row.provider_ref == stored.ref
        assert row.provider == "fake"
        assert stored.document == outgoing(int(number)).xml
    attempts = {n: r.attempts for n, r in rows.items()}
    assert attempts == {"1": 4, "2": 2, "3": 2, "4": 3, "5": 4, "6": 1}


async def test_a_rejection_is_final_until_an_operator_retries(
    engine: Engine, server: FakeProvider
) -> None:
    _enqueue(engine, range(1, 3))
    server.plan(outgoing(1).idempotency_key, "reject")
    clock = Clock()
    sender = _sender(engine, server, clock)
    await _settle(sender, clock, rounds=3)
    rows = _rows(engine)
    assert rows["1"].state is QueueState.REJECTED
    assert "not a registered seller" in (rows["1"].last_error or "")
    assert rows["2"].state is QueueState.ACCEPTED
    assert [b for k, b in server.seen if k == outgoing(1).idempotency_key] == ["reject"]

    with engine.begin() as conn:
        retry(conn, rows["1"].id, clock())
    await sender.drain()
    assert _rows(engine)["1"].state is QueueState.ACCEPTED
    assert server.records["vm-0001/1C26MAA/1"] == 1


async def test_a_provider_down_for_good_ends_failed_after_max_attempts(
    engine: Engine, server: FakeProvider
) -> None:
    _enqueue(engine, range(1, 2))
    server.default = "fail"
    clock = Clock()
    await _settle(_sender(engine, server, clock), clock)
    (row,) = _rows(engine).values()
    assert row.state is QueueState.FAILED
    assert row.attempts == POLICY.max_attempts
    assert len(server.seen) == POLICY.max_attempts
    assert server.stored == {}


async def test_a_worker_that_sent_but_died_is_finished_by_another_without_a_double(
    engine: Engine, server: FakeProvider
) -> None:
    _enqueue(engine, range(1, 2))
    provider = HttpProvider(server.url, timeout=TIMEOUT)
    with engine.begin() as conn:
        (taken,) = claim(conn, T0, 1, POLICY)
    await provider.submit(taken.submission)  # stored at the provider, never recorded here
    clock = Clock()
    sender = _sender(engine, server, clock)
    assert (await sender.drain()).claimed == 0  # still leased to the dead worker
    clock.advance(POLICY.lease.total_seconds())
    report = await sender.drain()
    assert (report.claimed, report.accepted) == (1, 1)
    (row,) = _rows(engine).values()
    assert row.provider_ref == server.stored[outgoing(1).idempotency_key].ref
    assert server.records == {"vm-0001/1C26MAA/1": 1}


async def test_two_senders_draining_together_send_each_receipt_once(
    engine: Engine, server: FakeProvider
) -> None:
    _enqueue(engine, range(1, 41))
    for n in range(1, 41, 7):
        server.plan(outgoing(n).idempotency_key, "drop")
    clock = Clock()
    one = _sender(engine, server, clock, concurrency=3, batch=4)
    two = _sender(engine, server, clock, concurrency=3, batch=4)
    for _ in range(4):
        await asyncio.gather(one.drain(), two.drain())
        clock.advance(POLICY.cap.total_seconds())
    rows = _rows(engine)
    assert len(rows) == 40
    assert {r.state for r in rows.values()} == {QueueState.ACCEPTED}
    assert len(server.records) == 40
    assert set(server.records.values()) == {1}


class _Broken:
    name = "broken"

    async def submit(self, submission: Submission) -> ProviderResult:
        raise RuntimeError("adapter bug")


async def test_a_provider_that_raises_loses_nothing(engine: Engine) -> None:
    _enqueue(engine, range(1, 2))
    clock = Clock()
    report = await Sender(engine, _Broken(), policy=POLICY, clock=clock).drain_once()
    assert (report.claimed, report.retrying) == (1, 1)
    (row,) = _rows(engine).values()
    assert row.state is QueueState.PENDING
    assert "adapter bug" in (row.last_error or "")


async def test_run_stops_when_told(engine: Engine, server: FakeProvider) -> None:
    _enqueue(engine, range(1, 4))
    stop = asyncio.Event()
    clock = Clock()
    task = asyncio.create_task(_sender(engine, server, clock).run(stop, idle=0.05))
    for _ in range(200):
        if len(server.stored) == 3:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert {r.state for r in _rows(engine).values()} == {QueueState.ACCEPTED}
