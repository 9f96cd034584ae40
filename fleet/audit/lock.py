"""Locked periods and adjustments after lock.

Locking stores the period's canonical JSON and its SHA-256. From then on the stored bytes
are the period's reconciliation: asking again returns them unchanged, whatever arrived
later. Corrections are adjustments (who, when, why, category, signed amount) kept beside
the locked report, never inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from fleet.audit.periods import Period
from fleet.audit.receipts import ReceiptSource
from fleet.audit.records import AuditError, ReconcileConfig
from fleet.audit.report import Category, iso, sha256_hex
from fleet.audit.source import reconcile_from_store, utc
from fleet.store.audit_models import audit_adjustments, audit_locks
from fleet.store.upsert import bulk_insert


@dataclass(frozen=True, slots=True)
class Lock:
    period: str
    locked_at: datetime
    locked_by: str
    sha256: str
    report: bytes


@dataclass(frozen=True, slots=True)
class Adjustment:
    period: str
    category: Category
    amount: int
    recorded_by: str
    recorded_at: datetime
    why: str
    machine: str | None = None
    ref: str | None = None
    currency: str = "VND"

    def to_dict(self) -> dict[str, object]:
        return {
            "period": self.period,
            "machine": self.machine,
            "category": self.category.value,
            "amount": self.amount,
            "currency": self.currency,
            "ref": self.ref,
            "recorded_by": self.recorded_by,
            "recorded_at": iso(self.recorded_at),
            "why": self.why,
        }


def get_lock(conn: Connection, period: str) -> Lock | None:
    row = conn.execute(select(audit_locks).where(audit_locks.c.period == period)).first()
    if row is None:
        return None
    return Lock(row.period, utc(row.locked_at), row.locked_by, row.sha256, bytes(row.report))


def period_report(
    engine: Engine,
    period: Period,
    config: ReconcileConfig,
    *,
    machines: Sequence[str] | None = None,
    receipts: ReceiptSource | None = None,
) -> tuple[bytes, Lock | None]:
    """The period's canonical JSON: the locked bytes if the period is locked (and the whole
    fleet is asked for), a fresh reconciliation otherwise."""
    if not machines:
        with engine.connect() as conn:
            lock = get_lock(conn, period.label)
        if lock is not None:
            return lock.report, lock
    report = reconcile_from_store(engine, period, config, machines=machines, receipts=receipts)
    return report.to_canonical_json(), None


def lock_period(
    engine: Engine,
    period: Period,
    config: ReconcileConfig,
    *,
    by: str,
    now: datetime,
    receipts: ReceiptSource | None = None,
) -> Lock:
    """Reconcile and lock; refuses a period that is already locked."""
    if not by.strip():
        raise AuditError("say who locks the period (--by)")
    report = reconcile_from_store(engine, period, config, receipts=receipts).to_canonical_json()
    lock = Lock(period.label, now, by.strip(), sha256_hex(report), report)
    with engine.begin() as conn:
        done = bulk_insert(
            conn,
            audit_locks,
            [
                {
                    "period": lock.period,
                    "locked_at": lock.locked_at,
                    "locked_by": lock.locked_by,
                    "sha256": lock.sha256,
                    "report": lock.report,
                }
            ],
            skip_conflicts_on=("period",),
            returning=("period",),
        )
        if not done:
            existing = get_lock(conn, period.label)
            assert existing is not None
            raise AuditError(
                f"period {period.label} was locked by {existing.locked_by} at "
                f"{iso(existing.locked_at)}; record changes with `vend audit adjust`"
            )
    return lock


def record_adjustment(engine: Engine, adjustment: Adjustment) -> None:
    """Adjustments are for locked periods: before the lock, correct the inputs instead."""
    if not adjustment.why.strip():
        raise AuditError("an adjustment needs a reason (--why)")
    if not adjustment.recorded_by.strip():
        raise AuditError("say who records the adjustment (--by)")
    with engine.begin() as conn:
        if get_lock(conn, adjustment.period) is None:
            raise AuditError(
                f"period {adjustment.period} is not locked: correct the inputs and reconcile again"
            )
        conn.execute(
            audit_adjustments.insert().values(
                period=adjustment.period,
                machine_id=adjustment.machine,
                category=adjustment.category.value,
                amount=adjustment.amount,
                currency=adjustment.currency,
                ref=adjustment.ref,
                recorded_by=adjustment.recorded_by.strip(),
                recorded_at=adjustment.recorded_at,
                why=adjustment.why.strip(),
            )
        )


def adjustments(conn: Connection, period: str) -> list[Adjustment]:
    rows = conn.execute(
        select(audit_adjustments)
        .where(audit_adjustments.c.period == period)
        .order_by(audit_adjustments.c.recorded_at, audit_adjustments.c.id)
    )
    return [
        Adjustment(
            period=r.period,
            category=Category(r.category),
            amount=r.amount,
            recorded_by=r.recorded_by,
            recorded_at=utc(r.recorded_at),
            why=r.why,
            machine=r.machine_id,
            ref=r.ref,
            currency=r.currency,
        )
        for r in rows
    ]
