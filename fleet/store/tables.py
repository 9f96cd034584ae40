"""Every table the fleet owns, registered on ``SQLModel.metadata`` by importing this module.

Alembic's env and the schema test import it, so a feature's table module joins the schema
by adding one line here (and its migration, on its own branch from ``0001``).
"""

from __future__ import annotations

import fleet.store.audit_models  # audit: cash counts, settlements, locks
import fleet.store.einvoice_models  # e-receipt transmission queue
import fleet.store.location_models  # sites, stores, cabinet banks
import fleet.store.models  # core telemetry tables
import fleet.store.planning_models  # restocking master data
import fleet.store.review_models  # smart-cabinet human review queue  # noqa: F401
