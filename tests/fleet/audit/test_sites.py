"""Rollup keys: the fleet's locations (fleet.locations), overridden by `vend audit site`."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from fleet.audit.periods import month_period
from fleet.audit.records import ReconcileConfig
from fleet.audit.sites import set_site
from fleet.audit.source import reconcile_from_store
from fleet.ingest import Ingestor
from fleet.store.planning_models import machine_sites
from tests.fleet.conftest import sale

AT = datetime(2026, 3, 10, 3, tzinfo=UTC)


def _site(machine: str, location: str | None, route: str | None) -> dict[str, object]:
    return {"machine_id": machine, "name": f"site of {machine}", "lat": 10.7, "lon": 106.7,
            "location_id": location, "route_id": route}  # fmt: skip


def test_locations_give_the_keys_and_audit_sites_override_them(engine: Engine) -> None:
    machines = ("vm-a", "vm-b", "vm-c", "vm-d")
    Ingestor(engine, clock=lambda: AT).ingest([sale(1, m) for m in machines])
    with engine.begin() as conn:
        conn.execute(
            machine_sites.insert(),
            [_site("vm-a", "store-1", "r-1"), _site("vm-b", "store-1", None),
             _site("vm-c", None, "r-2")],
        )  # fmt: skip
    set_site(engine, "vm-b", "kiosk-9", "r-9")  # the auditor's override wins
    period = month_period("2026-03", "Asia/Ho_Chi_Minh")
    report = reconcile_from_store(engine, period, ReconcileConfig())
    keys = {row.machine: (row.location, row.route) for row in report.rows}
    assert keys == {
        "vm-a": ("store-1", "r-1"),
        "vm-b": ("kiosk-9", "r-9"),
        "vm-c": ("vm-c", "r-2"),  # a site without a location is its own location
        "vm-d": ("unassigned", "unassigned"),  # no site at all
    }
