"""The human review queue: smart-cabinet sessions a machine could not settle on its own.

:func:`project_review` is the projection: a newly stored ``review`` message becomes an
open row of ``review_queue``, in the message's ingest transaction (so a duplicate changes
nothing). :func:`list_reviews` and :func:`review` read it; :func:`resolve` records a
person's decision -- charge an amount or release -- with who, when and why, once.

Sending the decided charge to the machine or the payment processor is not done here:
the row is the instruction for whoever collects (a processor's merchant-initiated
charge, or a refund), and reconciliation reads it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select, update

from fleet.store.review_models import Resolution, ReviewState, review_queue
from protocols.telemetry import ReviewEnvelope

MAX_NAME = 64


class ReviewError(Exception):
    """A review cannot be resolved as asked (unknown id, already resolved, bad amount)."""


class ReviewNotFoundError(ReviewError):
    pass


def project_review(conn: Connection, env: ReviewEnvelope) -> None:
    """An open queue row for a review message that was just stored."""
    body = env.body
    conn.execute(
        review_queue.insert().values(
            machine_id=env.machine_id,
            seq=env.seq,
            ts=env.ts,
            session_id=body.session_id,
            rule=body.rule[:64],
            outcome=body.outcome[:32],
            reasons=json.dumps(body.reasons, ensure_ascii=False),
            currency=body.currency,
            authorised=body.authorised,
            charged=body.charged,
            due=body.due,
            reader=body.reader,
            body=body.model_dump_json(),
            state=ReviewState.OPEN.value,
        )
    )


@dataclass(frozen=True, slots=True)
class Review:
    id: int
    machine_id: str
    session_id: int
    ts: datetime
    rule: str
    outcome: str
    reasons: list[str]
    currency: str
    authorised: int
    charged: int
    due: int | None
    reader: int | None
    state: str
    resolution: str | None
    resolved_amount: int | None
    resolved_by: str | None
    resolved_why: str | None
    resolved_at: datetime | None
    detail: dict[str, Any]  # the message body: lines and each shelf's evidence

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _review(row: Any) -> Review:
    return Review(
        id=int(row.id),
        machine_id=row.machine_id,
        session_id=int(row.session_id),
        ts=row.ts,
        rule=row.rule,
        outcome=row.outcome,
        reasons=list(json.loads(row.reasons)),
        currency=row.currency,
        authorised=int(row.authorised),
        charged=int(row.charged),
        due=None if row.due is None else int(row.due),
        reader=row.reader,
        state=row.state,
        resolution=row.resolution,
        resolved_amount=None if row.resolved_amount is None else int(row.resolved_amount),
        resolved_by=row.resolved_by,
        resolved_why=row.resolved_why,
        resolved_at=row.resolved_at,
        detail=json.loads(row.body),
    )


def list_reviews(
    conn: Connection, *, open_only: bool = False, machine_id: str | None = None
) -> list[Review]:
    """Oldest first, so the queue is worked in order."""
    query = select(review_queue)
    if open_only:
        query = query.where(review_queue.c.state == ReviewState.OPEN.value)
    if machine_id is not None:
        query = query.where(review_queue.c.machine_id == machine_id)
    rows = conn.execute(query.order_by(review_queue.c.ts, review_queue.c.id)).all()
    return [_review(row) for row in rows]


def review(conn: Connection, review_id: int) -> Review:
    row = conn.execute(select(review_queue).where(review_queue.c.id == review_id)).first()
    if row is None:
        raise ReviewNotFoundError(f"no review {review_id}")
    return _review(row)


def resolve(
    conn: Connection,
    review_id: int,
    *,
    charge: int | None,
    by: str,
    why: str,
    now: datetime,
) -> Review:
    """Decide an open review: ``charge`` minor units owed in all (``None``: release).

    The charge may not exceed what the reader authorised (the customer agreed to no
    more). A review is resolved once; a second decision is refused, not overwritten.
    """
    who, reason = by.strip(), why.strip()
    if not who or len(who) > MAX_NAME:
        raise ReviewError(f"--by must name who decides (1..{MAX_NAME} characters)")
    if not reason:
        raise ReviewError("--why must say why")
    current = review(conn, review_id)
    if charge is not None and not 0 <= charge <= current.authorised:
        raise ReviewError(
            f"charge {charge} must be 0..{current.authorised} {current.currency} "
            "(the amount the card authorised)"
        )
    resolution = Resolution.RELEASE if charge is None else Resolution.CHARGE
    done = conn.execute(
        update(review_queue)
        .where(and_(review_queue.c.id == review_id, review_queue.c.state == ReviewState.OPEN.value))
        .values(
            state=ReviewState.RESOLVED.value,
            resolution=resolution.value,
            resolved_amount=charge,
            resolved_by=who,
            resolved_why=reason,
            resolved_at=now,
        )
    )
    if done.rowcount != 1:
        raise ReviewError(
            f"review {review_id} was already resolved by {current.resolved_by} "
            f"({current.resolution})"
        )
    return review(conn, review_id)
