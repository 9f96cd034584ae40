"""The e-receipt transmission queue: one row per receipt document the fleet must deliver.

Rows are never deleted: the queue is also the record of what was sent, when, and what the
provider answered, which reconciliation and auditors read. A replacement or adjustment row
points at the receipt it corrects (``original_id``); the corrected row points back at its
replacement (``replaced_by_id``), set by a conditional update so two concurrent
replacements cannot both win.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from fleet.store.models import BigId, table


class ReceiptTransmission(SQLModel, table=True):
    __tablename__ = "receipt_queue"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_receipt_queue_idempotency_key"),
        UniqueConstraint("machine_id", "series", "number", "kind", name="uq_receipt_queue_receipt"),
        Index("ix_receipt_queue_due", "state", "next_attempt_at"),
        Index("ix_receipt_queue_original", "original_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    idempotency_key: str = Field(max_length=64)
    machine_id: str = Field(max_length=64)
    series: str = Field(max_length=32)
    number: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # original / replacement / adjustment
    original_id: int | None = Field(
        default=None,
        sa_type=BigInteger,
        sa_column_args=[ForeignKey("receipt_queue.id", name="fk_receipt_queue_original")],
    )
    replaced_by_id: int | None = Field(
        default=None,
        sa_type=BigInteger,
        sa_column_args=[ForeignKey("receipt_queue.id", name="fk_receipt_queue_replaced_by")],
    )
    sale_seq: int | None = Field(default=None, sa_type=BigInteger)
    document: bytes = Field(sa_type=LargeBinary)  # the XML exactly as transmitted
    total: int = Field(sa_type=BigInteger)  # minor units
    currency: str = Field(max_length=3)
    issued_at: datetime
    state: str = Field(max_length=16)  # pending / sending / accepted / rejected / failed
    attempts: int = 0
    next_attempt_at: datetime
    lease_until: datetime | None = None  # a "sending" row whose worker died is retaken after
    last_error: str | None = Field(default=None, sa_type=Text)
    provider: str | None = Field(default=None, max_length=32)
    provider_ref: str | None = Field(default=None, max_length=128)
    enqueued_at: datetime
    updated_at: datetime
    accepted_at: datetime | None = None


receipt_queue = table(ReceiptTransmission)
