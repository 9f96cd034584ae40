"""Sales reconciliation: DEX counters, telemetry, counted cash, cashless settlements and
e-receipts per machine-interval, with discrepancies, rollups and locked periods.

Pure core: :mod:`.records` (inputs), :mod:`.reconcile` (one interval), :mod:`.periods`
(intervals, rollups, the report), :mod:`.report` (result shape, canonical JSON). Store
side: :mod:`.source` (load), :mod:`.inputs` (cash counts, settlement imports),
:mod:`.lock` (locks, adjustments). The auditor's guide is docs/auditing.md.
"""

from __future__ import annotations

from fleet.audit.periods import Period, date_period, month_period, reconcile_period
from fleet.audit.reconcile import IntervalInput, reconcile_interval
from fleet.audit.records import (
    AuditError,
    CashCount,
    DexPoint,
    MachineActivity,
    ReceiptKind,
    ReceiptRecord,
    ReconcileConfig,
    SaleMethod,
    SaleRecord,
    SettlementKind,
    SettlementRecord,
    Site,
)
from fleet.audit.report import (
    Category,
    Discrepancy,
    IntervalResult,
    ReconciliationReport,
    Rollup,
    Totals,
)

__all__ = [
    "AuditError",
    "CashCount",
    "Category",
    "DexPoint",
    "Discrepancy",
    "IntervalInput",
    "IntervalResult",
    "MachineActivity",
    "Period",
    "ReceiptKind",
    "ReceiptRecord",
    "ReconcileConfig",
    "ReconciliationReport",
    "Rollup",
    "SaleMethod",
    "SaleRecord",
    "SettlementKind",
    "SettlementRecord",
    "Site",
    "Totals",
    "date_period",
    "month_period",
    "reconcile_interval",
    "reconcile_period",
]
