"""The human review queue: smart-cabinet sessions a person must decide.

One row per ``review`` message (a machine may send two for one session: the charge rule
it applied, then a payment that did not go through). The machine's facts are kept as
sent (``body`` holds the whole message: lines, each shelf's sensor evidence); the
resolution columns record who decided what, when and why. Money is BIGINT minor units.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from fleet.store.models import BigId, table


class ReviewState(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Resolution(enum.StrEnum):
    CHARGE = "charge"  # the customer owes the amount decided
    RELEASE = "release"  # nothing more is charged


class ReviewRow(SQLModel, table=True):
    __tablename__ = "review_queue"
    __table_args__ = (
        UniqueConstraint("machine_id", "seq", name="uq_review_queue_machine_seq"),
        Index("ix_review_queue_state", "state", "ts"),
        Index("ix_review_queue_session", "machine_id", "session_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    machine_id: str = Field(max_length=64)
    seq: int = Field(sa_type=BigInteger)  # the review message's event seq
    ts: datetime
    session_id: int = Field(sa_type=BigInteger)
    rule: str = Field(max_length=64)
    outcome: str = Field(max_length=32)
    reasons: str = Field(sa_type=Text)  # JSON list of strings
    currency: str = Field(max_length=3)
    authorised: int = Field(sa_type=BigInteger)
    charged: int = Field(sa_type=BigInteger)
    due: int | None = Field(default=None, sa_type=BigInteger)
    reader: int | None = None
    body: str = Field(sa_type=Text)  # the ReviewBody JSON as received
    state: str = Field(default=ReviewState.OPEN.value, max_length=16)
    resolution: str | None = Field(default=None, max_length=16)
    resolved_amount: int | None = Field(default=None, sa_type=BigInteger)
    resolved_by: str | None = Field(default=None, max_length=64)
    resolved_why: str | None = Field(default=None, sa_type=Text)
    resolved_at: datetime | None = None


review_queue = table(ReviewRow)
