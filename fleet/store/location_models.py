"""Locations: where machines stand, as operators name them.

A location is a single-machine ``site``, a ``store`` (several units behind one kiosk or
payment front, visited and counted together) or a ``cabinet_bank`` (smart cabinets side by
side). ``machine_sites.location_id`` names the location a machine belongs to; an id
without a row here is still valid and reads as an implicit location (see
:mod:`fleet.locations`), so master data written before this table keeps working.
"""

from __future__ import annotations

import enum

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from fleet.store.models import table


class LocationKind(enum.StrEnum):
    SITE = "site"  # one machine
    STORE = "store"  # several units behind one kiosk / payment front
    CABINET_BANK = "cabinet_bank"  # smart cabinets side by side


class LocationRow(SQLModel, table=True):
    __tablename__ = "locations"
    __table_args__ = (Index("ix_locations_route", "route_id"),)

    id: str = Field(primary_key=True, max_length=64)
    name: str = ""
    kind: str = Field(default=LocationKind.SITE.value, max_length=16)
    address: str = Field(default="", sa_type=Text)
    lat: float | None = None
    lon: float | None = None
    timezone: str | None = Field(default=None, max_length=64)  # IANA name; None: the fleet's
    route_id: str | None = Field(default=None, max_length=64)


locations = table(LocationRow)
