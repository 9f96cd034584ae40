"""Audit tables: cash counts, settlement rows, import batches, sites, locks, adjustments.

Money is integer minor units (BigInteger), times UTC. Imports are idempotent: a cash count
is unique per (machine, visit), a settlement row per ``row_key`` (the processor's
reference and kind, or a hash of the normalised row when the file has no reference).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from fleet.store.models import BigId, table


def _money() -> Any:
    return Field(sa_type=BigInteger)


class AuditCashCount(SQLModel, table=True):
    __tablename__ = "audit_cash_counts"
    __table_args__ = (
        UniqueConstraint("machine_id", "visit", name="uq_audit_cash_counts_visit"),
        Index("ix_audit_cash_counts_at", "machine_id", "counted_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    machine_id: str = Field(max_length=64)
    visit: str = Field(max_length=128)
    counted_at: datetime
    currency: str = Field(max_length=3)
    coins: int = _money()
    bills: int = _money()
    change_added: int = _money()
    refunds_by_hand: int = _money()
    source: str = Field(sa_type=Text)  # "cli" or "file.csv:LINE"
    entered_at: datetime


class AuditSettlement(SQLModel, table=True):
    __tablename__ = "audit_settlements"
    __table_args__ = (
        UniqueConstraint("row_key", name="uq_audit_settlements_row_key"),
        Index("ix_audit_settlements_at", "machine_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    row_key: str = Field(max_length=128)
    machine_id: str = Field(max_length=64)
    terminal: str = Field(max_length=128)
    at: datetime
    amount: int = _money()
    fee: int = _money()
    currency: str = Field(max_length=3)
    kind: str = Field(max_length=16)
    reference: str | None = Field(default=None, max_length=128)
    original_reference: str | None = Field(default=None, max_length=128)
    settlement_date: date | None = None
    source: str = Field(sa_type=Text)  # file name and line


class AuditImport(SQLModel, table=True):
    __tablename__ = "audit_imports"
    __table_args__ = (UniqueConstraint("kind", "sha256", name="uq_audit_imports_file"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    kind: str = Field(max_length=16)
    sha256: str = Field(max_length=64)
    filename: str = Field(sa_type=Text)
    rows: int
    imported: int
    imported_at: datetime


class AuditSite(SQLModel, table=True):
    __tablename__ = "audit_sites"

    machine_id: str = Field(primary_key=True, max_length=64)
    location: str
    route: str


class AuditLock(SQLModel, table=True):
    __tablename__ = "audit_locks"

    period: str = Field(primary_key=True, max_length=32)
    locked_at: datetime
    locked_by: str
    sha256: str = Field(max_length=64)
    report: bytes = Field(sa_type=LargeBinary)  # the canonical JSON, byte for byte


class AuditAdjustment(SQLModel, table=True):
    __tablename__ = "audit_adjustments"
    __table_args__ = (Index("ix_audit_adjustments_period", "period"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    period: str = Field(max_length=32)
    machine_id: str | None = Field(default=None, max_length=64)
    category: str = Field(max_length=64)
    amount: int = _money()
    currency: str = Field(max_length=3)
    ref: str | None = Field(default=None, sa_type=Text)
    recorded_by: str
    recorded_at: datetime
    why: str = Field(sa_type=Text)


audit_cash_counts = table(AuditCashCount)
audit_settlements = table(AuditSettlement)
audit_imports = table(AuditImport)
audit_sites = table(AuditSite)
audit_locks = table(AuditLock)
audit_adjustments = table(AuditAdjustment)
