"""The transmission queue on SQLite and PostgreSQL: idempotent enqueue, claims, backoff,
leases, final states, and two workers claiming at once."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from fleet.einvoice import (
    Enqueued,
    QueueState,
    ReceiptError,
    ReceiptKind,
    RetryPolicy,
    claim,
    counts,
    enqueue,
    find_id,
    get,
    list_receipts,
    record_accepted,
    record_failure,
    retry,
)
from tests.fleet.einvoice.support import T0, key, outgoing

POLICY = RetryPolicy(
    base=timedelta(seconds=10), cap=timedelta(minutes=5), max_attempts=3, lease=timedelta(minutes=1)
)
RNG = random.Random(7)


def _fill(engine: Engine, count: int) -> None:
    with engine.begin() as conn:
        for n in range(1, count + 1):
            assert enqueue(conn, outgoing(n), T0) is Enqueued.NEW


def test_enqueue_is_idempotent_and_refuses_a_second_document_for_one_number(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        assert enqueue(conn, outgoing(1), T0) is Enqueued.NEW
        assert enqueue(conn, outgoing(1), T0 + timedelta(hours=1)) is Enqueued.DUPLICATE
        assert enqueue(conn, outgoing(1, note="other"), T0) is Enqueued.CONFLICT
    with engine.connect() as conn:
        rows = list_receipts(conn)
    assert len(rows) == 1
    row = rows[0]
    assert row.key == key(1)
    assert row.state is QueueState.PENDING
    assert row.attempts == 0
    assert row.enqueued_at == T0
    assert row.idempotency_key == outgoing(1).idempotency_key
    assert (row.total, row.currency) == (12_000, "VND")


def test_enqueue_refuses_corrections(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(ReceiptError, match="replace_receipt"):
        enqueue(conn, outgoing(2, kind=ReceiptKind.REPLACEMENT, original=key(1)), T0)


def test_claims_take_due_rows_once_in_order(engine: Engine) -> None:
    _fill(engine, 5)
    with engine.begin() as conn:
        first = claim(conn, T0, 3, POLICY)
        second = claim(conn, T0, 3, POLICY)
        third = claim(conn, T0, 3, POLICY)
        early = claim(conn, T0 - timedelta(seconds=1), 3, POLICY)
    assert [c.submission.key for c in first] == [key(1), key(2), key(3)]
    assert [c.submission.key for c in second] == [key(4), key(5)]
    assert third == []
    assert early == []
    assert all(c.attempt == 1 for c in first + second)
    assert first[0].submission.document == outgoing(1).xml
    assert first[0].submission.idempotency_key == outgoing(1).idempotency_key
    with engine.connect() as conn:
        assert counts(conn)[QueueState.SENDING] == 5


def test_a_failed_attempt_backs_off_then_gives_up(engine: Engine) -> None:
    _fill(engine, 1)
    now = T0
    states = []
    for attempt in range(1, POLICY.max_attempts + 1):
        with engine.begin() as conn:
            (taken,) = claim(conn, now, 1, POLICY)
            assert taken.attempt == attempt
            states.append(
                record_failure(
                    conn,
                    taken,
                    provider="p",
                    reason=f"boom {attempt}",
                    permanent=False,
                    now=now,
                    rng=RNG,
                    policy=POLICY,
                )
            )
            row = get(conn, taken.id)
        if row.state is QueueState.PENDING:
            wait = row.next_attempt_at - now
            ceiling = min(POLICY.cap, POLICY.base * 2 ** (attempt - 1))
            assert ceiling / 2 <= wait <= ceiling
            with engine.begin() as conn:
                assert claim(conn, row.next_attempt_at - timedelta(seconds=1), 1, POLICY) == []
            now = row.next_attempt_at
    assert states == [QueueState.PENDING, QueueState.PENDING, QueueState.FAILED]
    assert row.state is QueueState.FAILED
    assert row.last_error == "boom 3"
    assert row.attempts == 3


def test_retry_after_from_the_provider_is_honoured_up_to_the_cap(engine: Engine) -> None:
    _fill(engine, 2)
    with engine.begin() as conn:
        a, b = claim(conn, T0, 2, POLICY)
        record_failure(
            conn,
            a,
            provider="p",
            reason="429",
            permanent=False,
            now=T0,
            rng=RNG,
            policy=POLICY,
            after=120,
        )
        record_failure(
            conn,
            b,
            provider="p",
            reason="429",
            permanent=False,
            now=T0,
            rng=RNG,
            policy=POLICY,
            after=86_400,
        )
        assert get(conn, a.id).next_attempt_at == T0 + timedelta(seconds=120)
        assert get(conn, b.id).next_attempt_at == T0 + POLICY.cap


def test_rejected_rows_stay_until_an_operator_retries_them(engine: Engine) -> None:
    _fill(engine, 2)
    with engine.begin() as conn:
        bad, good = claim(conn, T0, 2, POLICY)
        assert (
            record_failure(
                conn, bad, provider="p", reason="422 bad MST", permanent=True, now=T0, rng=RNG
            )
            is QueueState.REJECTED
        )
        assert record_accepted(conn, good, provider="p", ref="R-1", now=T0)
    later = T0 + timedelta(days=1)
    with engine.begin() as conn:
        assert claim(conn, later, 5, POLICY) == []
        with pytest.raises(ReceiptError, match="accepted"):
            retry(conn, good.id, later)
        again = retry(conn, bad.id, later)
    assert (again.state, again.attempts, again.next_attempt_at) == (QueueState.PENDING, 0, later)
    with engine.begin() as conn:
        (taken,) = claim(conn, later, 5, POLICY)
        accepted = get(conn, good.id)
    assert taken.id == bad.id
    assert (accepted.state, accepted.provider_ref, accepted.accepted_at) == (
        QueueState.ACCEPTED,
        "R-1",
        T0,
    )


def test_a_lost_worker_lease_runs_out_and_its_late_answers_are_sorted(engine: Engine) -> None:
    _fill(engine, 2)
    with engine.begin() as conn:
        stale_a, stale_b = claim(conn, T0, 2, POLICY)
    after_lease = T0 + POLICY.lease
    with engine.begin() as conn:
        fresh = claim(conn, after_lease, 5, POLICY)
    assert [c.id for c in fresh] == [stale_a.id, stale_b.id]
    assert [c.attempt for c in fresh] == [2, 2]
    with engine.begin() as conn:
        # A late failure from the old claim must not reschedule the new attempt...
        assert (
            record_failure(
                conn,
                stale_a,
                provider="p",
                reason="late",
                permanent=False,
                now=after_lease,
                rng=RNG,
            )
            is None
        )
        # ...but a late acceptance is a fact at the provider and is kept.
        assert record_accepted(conn, stale_b, provider="p", ref="R-9", now=after_lease)
        assert record_accepted(conn, fresh[1], provider="p", ref="R-9", now=after_lease) is False
        assert get(conn, stale_a.id).state is QueueState.SENDING
        assert get(conn, stale_b.id).state is QueueState.ACCEPTED


def test_a_worker_lost_on_the_last_attempt_fails_the_row(engine: Engine) -> None:
    _fill(engine, 1)
    now = T0
    for _ in range(POLICY.max_attempts):
        with engine.begin() as conn:
            assert len(claim(conn, now, 1, POLICY)) == 1
        now += POLICY.lease
    with engine.begin() as conn:
        assert claim(conn, now, 1, POLICY) == []
        (row,) = list_receipts(conn)
    assert row.state is QueueState.FAILED
    assert "stopped" in (row.last_error or "")


def test_two_workers_claiming_at_once_never_share_a_row(engine: Engine) -> None:
    _fill(engine, 30)
    taken: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def worker(mine: list[int]) -> None:
        try:
            while True:
                with engine.begin() as conn:
                    claims = claim(conn, T0, 2, POLICY)
                if not claims:
                    return
                mine.extend(c.id for c in claims)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(mine,)) for mine in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    everything = taken[0] + taken[1]
    assert len(everything) == len(set(everything)) == 30


@pytest.mark.postgres
def test_postgres_skips_rows_another_worker_holds(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite has one writer at a time")
    _fill(engine, 6)
    with engine.begin() as holder:
        held = claim(holder, T0, 3, POLICY)  # transaction still open: rows stay locked
        with engine.begin() as other:
            other.execute(text("SET LOCAL lock_timeout = '2s'"))  # would fail, not hang
            skipped = claim(other, T0, 6, POLICY)
    assert {c.id for c in held}.isdisjoint({c.id for c in skipped})
    assert len(skipped) == 3


def test_find_id_names_the_kind_when_one_key_has_several(engine: Engine) -> None:
    with engine.begin() as conn:
        enqueue(conn, outgoing(1), T0)
        assert find_id(conn, key(1)) is not None
        assert find_id(conn, key(2)) is None
        assert find_id(conn, key(1), ReceiptKind.ADJUSTMENT) is None
