"""The persistent transmission queue (table ``receipt_queue``), one row per receipt.

Every function runs inside the caller's transaction (``engine.begin()``), so enqueueing a
receipt can share the transaction that stored its sale.

Claiming is safe with several fleet workers: on PostgreSQL the due rows are locked with
``FOR UPDATE SKIP LOCKED`` (a second worker takes the next rows instead of waiting); on
SQLite every write transaction starts ``BEGIN IMMEDIATE`` (fleet.store.db), so claims are
serialised by the single writer. A claimed row is ``sending`` under a lease: a worker that
dies mid-send leaves it to be taken again when the lease runs out, and the provider's
idempotency key makes that second send harmless.

States: pending -> sending -> accepted | rejected (provider refused, permanently) |
pending again (retry with backoff) | failed (gave up after ``max_attempts``). Operators
move rejected and failed rows back to pending with :func:`retry`.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, exists, func, or_, select, update

from fleet.einvoice.provider import Submission
from fleet.einvoice.receipt import OutgoingReceipt, ReceiptError, ReceiptKey, ReceiptKind
from fleet.store.einvoice_models import receipt_queue as q
from fleet.store.upsert import bulk_insert, insert_for

LOST_WORKER = "the worker sending it stopped before recording an answer"


class QueueState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FAILED = "failed"  # permanent: retries exhausted


FINAL_STATES = frozenset({QueueState.ACCEPTED, QueueState.REJECTED, QueueState.FAILED})


class Enqueued(enum.StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"  # the same document was already queued: nothing changed
    CONFLICT = "conflict"  # another document holds this receipt number: not queued


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff, capped, with "equal jitter" (half fixed, half random) so a
    provider outage does not end in every worker retrying in the same second."""

    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 12
    lease: timedelta = timedelta(minutes=2)

    def __post_init__(self) -> None:
        if self.base <= timedelta(0) or self.cap < self.base:
            raise ValueError("retry policy needs 0 < base <= cap")
        if self.max_attempts < 1 or self.lease <= timedelta(0):
            raise ValueError("retry policy needs max_attempts >= 1 and a positive lease")

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        """The wait after the ``attempts``-th failed attempt (1-based)."""
        # In float seconds: base * 2**n overflows timedelta long before n is large.
        exponent = min(max(attempts - 1, 0), 64)
        ceiling = min(self.cap.total_seconds(), self.base.total_seconds() * 2.0**exponent)
        half = timedelta(seconds=ceiling / 2)
        return half + half * rng.random()


DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class QueuedReceipt:
    """A queue row as operators and reconciliation see it."""

    id: int
    idempotency_key: str
    key: ReceiptKey
    kind: ReceiptKind
    state: QueueState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    provider: str | None
    provider_ref: str | None
    total: int
    currency: str
    issued_at: datetime
    sale_seq: int | None
    enqueued_at: datetime
    updated_at: datetime
    accepted_at: datetime | None
    original: ReceiptKey | None
    replaced_by: ReceiptKey | None


@dataclass(frozen=True)
class Claim:
    """A row taken for sending; ``attempt`` identifies this claim when recording a
    failure, so a worker whose lease ran out cannot overwrite a newer attempt."""

    id: int
    attempt: int
    submission: Submission


def enqueue(conn: Connection, receipt: OutgoingReceipt, now: datetime) -> Enqueued:
    """Queue an original receipt. Safe to repeat, and from two workers at once."""
    _check_original(receipt)
    return insert_receipt(conn, receipt, now, original_id=None)


def enqueue_many(
    conn: Connection, receipts: Sequence[OutgoingReceipt], now: datetime
) -> list[Enqueued]:
    """:func:`enqueue` for each receipt, in order, in one insert (plus one look-up when some
    were queued before): ingest queues a batch's receipts this way, because a statement
    per receipt cost more than the rest of ingest together."""
    for receipt in receipts:
        _check_original(receipt)
    if not receipts:
        return []
    rows = [_row(receipt, now, original_id=None) for receipt in receipts]
    for row in rows:
        del row["original_id"]  # NULL for every original; an all-NULL array has no type
    fresh = {
        key
        for (key,) in bulk_insert(
            conn, q, rows, skip_conflicts_on=(), returning=("idempotency_key",)
        )
    }
    taken = [r.idempotency_key for r in receipts if r.idempotency_key not in fresh]
    held: dict[str, bytes] = {}
    if taken:
        found = conn.execute(
            select(q.c.idempotency_key, q.c.document).where(q.c.idempotency_key.in_(set(taken)))
        )
        held = {key: bytes(document) for key, document in found}
    outcomes = []
    for receipt in receipts:
        key = receipt.idempotency_key
        if key in fresh and key not in held:
            held[key] = receipt.xml  # what a later copy in this batch is compared with
            outcomes.append(Enqueued.NEW)
        else:
            same = held.get(key) == receipt.xml
            outcomes.append(Enqueued.DUPLICATE if same else Enqueued.CONFLICT)
    return outcomes


def _check_original(receipt: OutgoingReceipt) -> None:
    if receipt.kind is not ReceiptKind.ORIGINAL:
        raise ReceiptError(
            f"receipt {receipt.key} is a {receipt.kind.value}: queue it with "
            "replace_receipt or adjust_receipt so it is linked to its original"
        )


def insert_receipt(
    conn: Connection, receipt: OutgoingReceipt, now: datetime, *, original_id: int | None
) -> Enqueued:
    row = _row(receipt, now, original_id=original_id)
    stmt = insert_for(conn, q).values(row).on_conflict_do_nothing().returning(q.c.id)
    if conn.execute(stmt).first() is not None:
        return Enqueued.NEW
    existing = conn.execute(
        select(q.c.document).where(q.c.idempotency_key == receipt.idempotency_key)
    ).scalar_one_or_none()
    return Enqueued.DUPLICATE if existing == receipt.xml else Enqueued.CONFLICT


def _row(receipt: OutgoingReceipt, now: datetime, *, original_id: int | None) -> dict[str, Any]:
    return {
        "idempotency_key": receipt.idempotency_key,
        "machine_id": receipt.key.machine_id,
        "series": receipt.key.series,
        "number": receipt.key.number,
        "kind": receipt.kind.value,
        "original_id": original_id,
        "sale_seq": receipt.sale_seq,
        "document": receipt.xml,
        "total": receipt.total,
        "currency": receipt.currency,
        "issued_at": receipt.issued_at,
        "state": QueueState.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "enqueued_at": now,
        "updated_at": now,
    }


def find_id(conn: Connection, key: ReceiptKey, kind: ReceiptKind | None = None) -> int | None:
    """The row of ``key``; without ``kind``, the only row with that key (an error when a
    key was queued under several kinds)."""
    stmt = select(q.c.id).where(*_key_is(key))
    if kind is not None:
        stmt = stmt.where(q.c.kind == kind.value)
    ids = conn.execute(stmt).scalars().all()
    if len(ids) > 1:
        raise ReceiptError(f"receipt {key} is queued as several kinds: name the kind")
    return ids[0] if ids else None


def get(conn: Connection, row_id: int) -> QueuedReceipt:
    row = conn.execute(_listing().where(q.c.id == row_id)).one()
    return _queued(row)


def list_receipts(
    conn: Connection,
    *,
    state: QueueState | None = None,
    machine_id: str | None = None,
    limit: int | None = None,
) -> list[QueuedReceipt]:
    stmt = _listing().order_by(q.c.id)
    if state is not None:
        stmt = stmt.where(q.c.state == state.value)
    if machine_id is not None:
        stmt = stmt.where(q.c.machine_id == machine_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_queued(row) for row in conn.execute(stmt)]


def counts(conn: Connection) -> dict[QueueState, int]:
    found = dict.fromkeys(QueueState, 0)
    for state, count in conn.execute(select(q.c.state, func.count()).group_by(q.c.state)):
        found[QueueState(state)] = int(count)
    return found


def claim(
    conn: Connection, now: datetime, limit: int, policy: RetryPolicy = DEFAULT_POLICY
) -> list[Claim]:
    """Take up to ``limit`` due rows for sending. A correction waits until its original
    was accepted: the provider needs the original's reference."""
    if limit < 1:
        return []
    conn.execute(
        update(q)
        .where(_lease_expired(now), q.c.attempts >= policy.max_attempts)
        .values(state=QueueState.FAILED.value, last_error=LOST_WORKER, updated_at=now)
    )
    original = q.alias("original")
    due = or_(
        and_(q.c.state == QueueState.PENDING.value, q.c.next_attempt_at <= now), _lease_expired(now)
    )
    ready = or_(
        q.c.original_id.is_(None),
        exists().where(
            original.c.id == q.c.original_id, original.c.state == QueueState.ACCEPTED.value
        ),
    )
    ids = (
        conn.execute(
            select(q.c.id)
            .where(due, ready)
            .order_by(q.c.next_attempt_at, q.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if not ids:
        return []
    conn.execute(
        update(q)
        .where(q.c.id.in_(ids))
        .values(
            state=QueueState.SENDING.value,
            attempts=q.c.attempts + 1,
            lease_until=now + policy.lease,
            updated_at=now,
        )
    )
    stmt = (
        select(
            q,
            original.c.machine_id.label("o_machine"),
            original.c.series.label("o_series"),
            original.c.number.label("o_number"),
            original.c.provider_ref.label("o_ref"),
        )
        .select_from(q.outerjoin(original, original.c.id == q.c.original_id))
        .where(q.c.id.in_(ids))
        .order_by(q.c.next_attempt_at, q.c.id)
    )
    claims = []
    for row in conn.execute(stmt):
        m = row._mapping  # noqa: SLF001  (SQLAlchemy's public API, despite the name)
        original_key = None
        if m["o_machine"] is not None:
            original_key = ReceiptKey(m["o_machine"], m["o_series"], m["o_number"])
        submission = Submission(
            idempotency_key=m["idempotency_key"],
            key=ReceiptKey(m["machine_id"], m["series"], m["number"]),
            kind=ReceiptKind(m["kind"]),
            document=m["document"],
            original=original_key,
            original_ref=m["o_ref"],
        )
        claims.append(Claim(id=m["id"], attempt=m["attempts"], submission=submission))
    return claims


def record_accepted(
    conn: Connection, claim: Claim, *, provider: str, ref: str, now: datetime
) -> bool:
    """Acceptance is a fact at the provider, so it is recorded even from a claim whose lease
    ran out, as long as the row has no final state yet. False: nothing changed."""
    result = conn.execute(
        update(q)
        .where(
            q.c.id == claim.id,
            q.c.state.in_([QueueState.PENDING.value, QueueState.SENDING.value]),
        )
        .values(
            state=QueueState.ACCEPTED.value,
            provider=provider,
            provider_ref=ref,
            accepted_at=now,
            lease_until=None,
            last_error=None,
            updated_at=now,
        )
    )
    return result.rowcount == 1


def record_failure(
    conn: Connection,
    claim: Claim,
    *,
    provider: str,
    reason: str,
    permanent: bool,
    now: datetime,
    rng: random.Random,
    policy: RetryPolicy = DEFAULT_POLICY,
    after: float | None = None,
) -> QueueState | None:
    """Record a refusal or a failed attempt; returns the new state, or None when this
    claim is no longer the row's latest (its lease ran out and another worker took it)."""
    if permanent:
        state, next_at = QueueState.REJECTED, now
    elif claim.attempt >= policy.max_attempts:
        state, next_at = QueueState.FAILED, now
    else:
        wait = policy.delay(claim.attempt, rng)
        if after is not None and after > 0:
            wait = max(wait, min(timedelta(seconds=after), policy.cap))
        state, next_at = QueueState.PENDING, now + wait
    result = conn.execute(
        update(q)
        .where(
            q.c.id == claim.id,
            q.c.state == QueueState.SENDING.value,
            q.c.attempts == claim.attempt,
        )
        .values(
            state=state.value,
            next_attempt_at=next_at,
            lease_until=None,
            provider=provider,
            last_error=reason[:2000],
            updated_at=now,
        )
    )
    return state if result.rowcount == 1 else None


def retry(conn: Connection, row_id: int, now: datetime) -> QueuedReceipt:
    """Send a rejected or failed receipt again, from a fresh count of attempts."""
    current = get(conn, row_id)
    if current.state not in {QueueState.REJECTED, QueueState.FAILED}:
        raise ReceiptError(
            f"receipt {current.key} ({current.kind.value}) is {current.state.value}: "
            "only rejected or failed receipts can be retried"
        )
    conn.execute(
        update(q)
        .where(q.c.id == row_id, q.c.state == current.state.value)
        .values(state=QueueState.PENDING.value, attempts=0, next_attempt_at=now, updated_at=now)
    )
    return get(conn, row_id)


def _key_is(key: ReceiptKey) -> Sequence[Any]:
    return (q.c.machine_id == key.machine_id, q.c.series == key.series, q.c.number == key.number)


def _lease_expired(now: datetime) -> Any:
    return and_(q.c.state == QueueState.SENDING.value, q.c.lease_until <= now)


_original = q.alias("orig")
_replacement = q.alias("repl")


def _listing() -> Any:
    return select(
        q,
        _original.c.machine_id.label("o_machine"),
        _original.c.series.label("o_series"),
        _original.c.number.label("o_number"),
        _replacement.c.machine_id.label("r_machine"),
        _replacement.c.series.label("r_series"),
        _replacement.c.number.label("r_number"),
    ).select_from(
        q.outerjoin(_original, _original.c.id == q.c.original_id).outerjoin(
            _replacement, _replacement.c.id == q.c.replaced_by_id
        )
    )


def _queued(row: Row[Any]) -> QueuedReceipt:
    m = row._mapping  # noqa: SLF001  (SQLAlchemy's public API, despite the name)
    original = replaced_by = None
    if m["o_machine"] is not None:
        original = ReceiptKey(m["o_machine"], m["o_series"], m["o_number"])
    if m["r_machine"] is not None:
        replaced_by = ReceiptKey(m["r_machine"], m["r_series"], m["r_number"])
    return QueuedReceipt(
        id=m["id"],
        idempotency_key=m["idempotency_key"],
        key=ReceiptKey(m["machine_id"], m["series"], m["number"]),
        kind=ReceiptKind(m["kind"]),
        state=QueueState(m["state"]),
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        last_error=m["last_error"],
        provider=m["provider"],
        provider_ref=m["provider_ref"],
        total=m["total"],
        currency=m["currency"],
        issued_at=m["issued_at"],
        sale_seq=m["sale_seq"],
        enqueued_at=m["enqueued_at"],
        updated_at=m["updated_at"],
        accepted_at=m["accepted_at"],
        original=original,
        replaced_by=replaced_by,
    )
