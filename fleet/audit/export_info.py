"""What every export file states besides the report: where it came from and who signs.

``issued_at`` is the one timestamp the files carry (the lock time of a locked period, the
period end otherwise), so the same report always exports the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from fleet.audit.report import Category, ReconciliationReport, Totals, iso

SIGN_CONVENTION = "over = positive, short = negative"
TOTAL_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Totals))
CATEGORIES: tuple[str, ...] = tuple(c.value for c in Category)
# Rollup grains as the report names them, and as the files name them.
GRAIN_NAMES: dict[str, str] = {
    "machine": "machines",
    "location": "locations",
    "route": "routes",
    "month": "months",
    "total": "period",
}


@dataclass(frozen=True, slots=True)
class ExportInfo:
    """``report_sha256``: SHA-256 of the report's canonical JSON (the lock's digest when
    locked). ``content_digest``: SHA-256 of the manifest's signed content that does not
    depend on the files (period, currency, report digest, control totals), printed on the
    PDF so a reader can tie the paper to the manifest. ``key_id``: the signing key's
    fingerprint."""

    report_sha256: str
    issued_at: datetime
    locked_by: str | None
    content_digest: str
    key_id: str
    algorithm: str

    @property
    def locked(self) -> bool:
        return self.locked_by is not None


def period_lines(report: ReconciliationReport, info: ExportInfo) -> list[tuple[str, str]]:
    """The facts every format states up front, as (label, value)."""
    status = (
        f"locked by {info.locked_by} at {iso(info.issued_at)}"
        if info.locked
        else "not locked (a fresh reconciliation)"
    )
    return [
        ("period", report.label),
        ("from (UTC)", iso(report.start)),
        ("to (UTC, exclusive)", iso(report.end)),
        ("time zone", report.timezone),
        ("currency", f"{report.currency} (integer minor units)"),
        ("sign convention", SIGN_CONVENTION),
        ("status", status),
        ("report sha256", info.report_sha256),
    ]
