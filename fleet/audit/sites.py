"""Where machines stand and which route serves them: the keys of the rollups."""

from __future__ import annotations

from sqlalchemy import Engine

from fleet.audit.records import AuditError
from fleet.store.audit_models import audit_sites
from fleet.store.upsert import insert_for


def set_site(engine: Engine, machine: str, location: str, route: str) -> None:
    if not machine.strip() or not location.strip() or not route.strip():
        raise AuditError("machine, location and route must not be empty")
    with engine.begin() as conn:
        stmt = insert_for(conn, audit_sites).values(
            machine_id=machine.strip(), location=location.strip(), route=route.strip()
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["machine_id"],
                set_={"location": stmt.excluded.location, "route": stmt.excluded.route},
            )
        )
