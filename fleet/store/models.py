"""The fleet's tables (SQLModel). Money is integer minor units, timestamps are UTC.

Events are the idempotency ledger: one row per (machine_id, seq), and every projection row
below is written in the same transaction as its event, only when that event was new.
Status reports take no sequence number (see protocols.telemetry.envelope), so they live in
``status_reports`` and on the ``machines`` row, never in ``events``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, Table, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _money() -> Any:
    return Field(sa_type=BigInteger)


class Machine(SQLModel, table=True):
    __tablename__ = "machines"

    id: str = Field(primary_key=True, max_length=64)
    first_seen: datetime
    last_seen: datetime
    online: bool | None = None
    boot_id: int | None = None
    last_seq: int = Field(default=0, sa_type=BigInteger)  # highest contiguous seq ingested
    max_seq: int = Field(default=0, sa_type=BigInteger)  # highest seq ingested
    firmware: str | None = None
    config_version: str | None = None
    status_at: datetime | None = None  # ts of the status report in force
    outbox_backlog: int | None = None
    hmac_key: bytes | None = Field(default=None, sa_type=LargeBinary)


class Event(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("machine_id", "seq", name="uq_events_machine_seq"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    machine_id: str = Field(max_length=64)
    seq: int = Field(sa_type=BigInteger)
    msg_id: str
    schema_name: str = Field(sa_column_kwargs={"name": "schema"})
    v: int
    boot_id: int
    ts: datetime
    received_at: datetime
    body: str = Field(sa_type=Text)


class StatusReport(SQLModel, table=True):
    __tablename__ = "status_reports"
    __table_args__ = (
        UniqueConstraint("machine_id", "boot_id", "seq", "online", name="uq_status_reports_key"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    machine_id: str = Field(max_length=64, index=True)
    boot_id: int
    seq: int = Field(sa_type=BigInteger)
    online: bool
    ts: datetime
    received_at: datetime
    body: str = Field(sa_type=Text)


class Sale(SQLModel, table=True):
    __tablename__ = "sales"
    __table_args__ = (
        UniqueConstraint("machine_id", "seq", name="uq_sales_machine_seq"),
        Index("ix_sales_ts", "ts"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    machine_id: str = Field(max_length=64)
    seq: int = Field(sa_type=BigInteger)
    ts: datetime
    vend_id: int = Field(sa_type=BigInteger)
    selection: str
    product: str
    price: int = _money()
    currency: str = Field(max_length=3)
    method: str
    reader: int | None = None
    payment_ref: str | None = None
    settled: bool
    receipt_number: str | None = None  # as displayed: SYMBOL-NUMBER, e.g. 1C26MAB-00000042
    cash: str | None = Field(default=None, sa_type=Text)  # CashTender JSON
    lines: str | None = Field(default=None, sa_type=Text)  # SaleLine list JSON
    # The e-receipt the machine issued with the sale (NULL: none); the document itself is
    # in receipt_queue (machine_id, series = receipt_symbol, number = str(receipt_no)).
    receipt_symbol: str | None = Field(default=None, max_length=32)
    receipt_no: int | None = Field(default=None, sa_type=BigInteger)
    receipt_total: int | None = Field(default=None, sa_type=BigInteger)  # incl. VAT
    receipt_vat: int | None = Field(default=None, sa_type=BigInteger)  # VAT over all rates
    # Why the receipt was not queued for transmission (invalid, number taken, ...).
    receipt_problem: str | None = Field(default=None, sa_type=Text)


class Refund(SQLModel, table=True):
    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("machine_id", "seq", name="uq_refunds_machine_seq"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    machine_id: str = Field(max_length=64)
    seq: int = Field(sa_type=BigInteger)
    ts: datetime
    kind: str
    amount: int = _money()
    currency: str = Field(max_length=3)
    vend_id: int | None = Field(default=None, sa_type=BigInteger)
    payout_id: int | None = Field(default=None, sa_type=BigInteger)
    reason: str = ""


class CashMovement(SQLModel, table=True):
    __tablename__ = "cash_movements"
    __table_args__ = (UniqueConstraint("machine_id", "seq", name="uq_cash_machine_seq"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    machine_id: str = Field(max_length=64)
    seq: int = Field(sa_type=BigInteger)
    ts: datetime
    kind: str
    amount: int = _money()
    currency: str = Field(max_length=3)
    tubes: str | None = Field(default=None, sa_type=Text)  # TubeCount list JSON
    cash_box: str | None = Field(default=None, sa_type=Text)  # CashBoxCount JSON
    detail: str = ""


class StockLevel(SQLModel, table=True):
    """Absolute levels per selection; ``seq`` is the event they came from, so an older
    stock message delivered late never overwrites a newer one."""

    __tablename__ = "stock_levels"

    machine_id: str = Field(primary_key=True, max_length=64)
    selection: str = Field(primary_key=True, max_length=8)
    product: str
    count: int
    capacity: int
    par: int
    price: int = _money()
    currency: str = Field(max_length=3)
    in_service: bool
    reason: str | None = None
    seq: int = Field(sa_type=BigInteger)
    updated_at: datetime


class Alarm(SQLModel, table=True):
    """Open while ``cleared_at`` is NULL. A clear that arrives before its raise is kept
    with ``raised_at`` NULL until the raise turns up."""

    __tablename__ = "alarms"
    __table_args__ = (Index("ix_alarms_open", "machine_id", "cleared_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    machine_id: str = Field(max_length=64)
    code: str
    device: str | None = None
    selection: str | None = None
    severity: str
    detail: str = ""
    raised_at: datetime | None = None
    raised_seq: int | None = Field(default=None, sa_type=BigInteger)
    cleared_at: datetime | None = None
    cleared_seq: int | None = Field(default=None, sa_type=BigInteger)


class ServiceVisit(SQLModel, table=True):
    __tablename__ = "service_visits"
    __table_args__ = (UniqueConstraint("machine_id", "opened_at", name="uq_service_visits_opened"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    machine_id: str = Field(max_length=64)
    opened_at: datetime
    closed_at: datetime | None = None
    operator: str | None = None
    currency: str | None = Field(default=None, max_length=3)
    actions: str = Field(sa_type=Text)  # ServiceActionEntry list JSON
    seq: int = Field(sa_type=BigInteger)  # the event the row was last written from


class DexRead(SQLModel, table=True):
    __tablename__ = "dex_reads"
    __table_args__ = (UniqueConstraint("machine_id", "seq", name="uq_dex_reads_machine_seq"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    machine_id: str = Field(max_length=64)
    seq: int = Field(sa_type=BigInteger)
    read_at: datetime
    reset: bool
    raw: str = Field(sa_type=Text)
    summary: str = Field(sa_type=Text)  # DexSummary JSON


class CommandRecord(SQLModel, table=True):
    """A signed command as published: ``payload`` is the exact wire document."""

    __tablename__ = "commands"
    __table_args__ = (Index("ix_commands_unpublished", "published_at", "expires_at"),)

    id: str = Field(primary_key=True, max_length=64)
    machine_id: str = Field(max_length=64, index=True)
    name: str
    args: str = Field(sa_type=Text)
    payload: bytes = Field(sa_type=LargeBinary)
    issued_at: datetime
    expires_at: datetime
    published_at: datetime | None = None
    ack_outcome: str | None = None
    ack_detail: str | None = None
    acked_at: datetime | None = None


class Gap(SQLModel, table=True):
    """A range of seqs known to be missing, [from_seq, to_seq]; it shrinks or splits as
    they arrive, and ``filled_at`` is set when none is missing any more."""

    __tablename__ = "gaps"
    __table_args__ = (Index("ix_gaps_open", "machine_id", "filled_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    machine_id: str = Field(max_length=64)
    from_seq: int = Field(sa_type=BigInteger)
    to_seq: int = Field(sa_type=BigInteger)
    detected_at: datetime
    filled_at: datetime | None = None
    resync_command_id: str | None = Field(default=None, max_length=64)


class Quarantined(SQLModel, table=True):
    __tablename__ = "quarantine"

    id: int | None = Field(default=None, primary_key=True, sa_type=BigId)
    received_at: datetime
    topic: str = Field(sa_type=Text)
    payload: bytes = Field(sa_type=LargeBinary)
    reason: str = Field(sa_type=Text)


def table(model: type[SQLModel]) -> Table:
    """The Core table of a model, for the hot path (no per-row ORM objects)."""
    result = model.__table__  # type: ignore[attr-defined]
    assert isinstance(result, Table)
    return result


machines = table(Machine)
events = table(Event)
status_reports = table(StatusReport)
sales = table(Sale)
refunds = table(Refund)
cash_movements = table(CashMovement)
stock_levels = table(StockLevel)
alarms = table(Alarm)
service_visits = table(ServiceVisit)
dex_reads = table(DexRead)
commands = table(CommandRecord)
gaps = table(Gap)
quarantine = table(Quarantined)
