"""Locations and stores on SQLite and PostgreSQL: master data through the importer,
telemetry through the real ingest path, and the per-store rollups checked against the
facts listed here (not against what the code under test computes)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from fleet import locations as loc
from fleet.ingest import Ingestor, Received
from fleet.planning.masterdata import (
    MasterDataError,
    export_master_data,
    import_master_data,
    read_files,
    to_toml,
    write_csvs,
)
from fleet.queries import NotFoundError
from fleet.store.location_models import locations
from fleet.store.planning_models import machine_sites
from protocols.telemetry import (
    AlarmBody,
    AlarmCode,
    AlarmState,
    Body,
    PaymentMethod,
    SaleBody,
    SelectionStock,
    Severity,
    StatusBody,
    StockBody,
    StockKind,
)
from tests.fleet.conftest import T0, message

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
UTC_ZONE = ZoneInfo("UTC")
H = timedelta(hours=1)
NOW = T0 + 2 * H  # 17:00 in Ho Chi Minh City; its day began at T0 - 15 h
BEFORE = -16 * H  # from T0: 23:00 local the day before, not "today" in Ho Chi Minh City
YESTERDAY = T0 + BEFORE

MASTER = """\
[[locations]]
id = "st-q1"
name = "Cửa hàng tự động Quận 1"
kind = "store"
address = "12 Lê Lợi, Quận 1"
lat = 10.776
lon = 106.701
timezone = "Asia/Ho_Chi_Minh"
route_id = "r1"

[[locations]]
id = "bank-7"
kind = "cabinet_bank"

[[sites]]
machine_id = "vm-s1"
lat = 10.776
lon = 106.701
location_id = "st-q1"

[[sites]]
machine_id = "vm-s2"
lat = 10.776
lon = 106.701
location_id = "st-q1"
route_id = "r1"

[[sites]]
machine_id = "vm-s3"
lat = 10.776
lon = 106.701
location_id = "st-q1"

[[sites]]
machine_id = "vm-i1"
lat = 10.8
lon = 106.6
location_id = "acct-9"
route_id = "r2"

[[sites]]
machine_id = "vm-i2"
lat = 10.8
lon = 106.6
location_id = "acct-9"

[[sites]]
machine_id = "vm-lone"
name = "Sảnh bệnh viện"
lat = 10.7
lon = 106.7
route_id = "r3"
"""


@dataclass(frozen=True)
class Level:
    machine: str
    code: str
    product: str
    count: int
    par: int
    capacity: int


LEVELS = [
    Level("vm-s1", "A1", "Water", 3, 5, 10),
    Level("vm-s1", "A2", "Juice", 0, 5, 10),
    Level("vm-s2", "A1", "Water", 4, 5, 8),
    Level("vm-s2", "B1", "Tea", 8, 6, 12),
    Level("vm-i1", "A1", "Water", 1, 5, 10),
    Level("vm-nosite", "A1", "Water", 9, 5, 10),
]
SALES = [  # machine, product, price, currency, when (after the base time; T0 here)
    ("vm-s1", "Water", 10000, "VND", 0 * H),
    ("vm-s1", "Juice", 15000, "VND", BEFORE),
    ("vm-s2", "Tea", 12000, "VND", H),
    ("vm-s2", "Tea", 12000, "VND", H),
    ("vm-i1", "Water", 10000, "VND", 0 * H),
    ("vm-lone", "Water", 150, "EUR", 0 * H),
    ("vm-nosite", "Water", 10000, "VND", 0 * H),
]
STORE = ("vm-s1", "vm-s2", "vm-s3")  # vm-s3 has a site but never reported


def _stock(machine: str) -> StockBody:
    return StockBody(
        kind=StockKind.SNAPSHOT,
        currency="VND",
        selections=[
            SelectionStock(
                code=lv.code,
                product=lv.product,
                count=lv.count,
                capacity=lv.capacity,
                par=lv.par,
                price=10000,
                in_service=True,
            )
            for lv in LEVELS
            if lv.machine == machine
        ],
    )


def telemetry(t0: datetime = T0) -> list[Received]:
    """Every machine's messages, seqs contiguous per machine in time order, from ``t0``."""
    timeline: list[tuple[str, Body, datetime]] = [
        (machine, _stock(machine), t0 + BEFORE - H)
        for machine in sorted({lv.machine for lv in LEVELS})
    ]
    for k, (machine, product, price, currency, after) in enumerate(SALES):
        sale = SaleBody(
            vend_id=k + 1,
            selection="A1",
            product=product,
            price=price,
            currency=currency,
            method=PaymentMethod.CASH,
        )
        timeline.append((machine, sale, t0 + after))
    jam = AlarmBody(
        code=AlarmCode.JAM, state=AlarmState.RAISED, severity=Severity.CRITICAL, selection="A1"
    )
    low = AlarmBody(
        code=AlarmCode.TUBES_LOW,
        state=AlarmState.RAISED,
        severity=Severity.WARNING,
        device="changer",
    )
    cleared = low.model_copy(update={"state": AlarmState.CLEARED})
    timeline += [("vm-s1", jam, t0), ("vm-s2", low, t0), ("vm-s2", cleared, t0 + H)]
    timeline += [("vm-i2", low, t0)]
    timeline.sort(key=lambda item: item[2])
    seqs: dict[str, int] = defaultdict(int)
    out = []
    for machine, body, at in timeline:
        seqs[machine] += 1
        out.append(message(body, seqs[machine], machine, at=at))
    status = StatusBody(online=True, firmware="fw", config_version="c", started_at=t0 - H)
    out.append(message(status, 99, "vm-s1"))
    return out


@pytest.fixture
def fleet(engine: Engine, tmp_path: Path) -> Engine:
    master = tmp_path / "fleet.toml"
    master.write_text(MASTER, encoding="utf-8")
    import_master_data(engine, [master])
    report = Ingestor(engine, clock=lambda: NOW).ingest(telemetry())
    assert report.quarantined == 0
    return engine


def _sales_today(machines: tuple[str, ...], start: datetime) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for machine, _, price, currency, after in SALES:
        if machine in machines and T0 + after >= start:
            count, total = out.get(currency, (0, 0))
            out[currency] = (count + 1, total + price)
    return out


# --- the mapping -----------------------------------------------------------------------------


def test_every_machine_with_a_site_maps_to_one_location(fleet: Engine) -> None:
    with fleet.connect() as conn:
        refs = loc.machine_locations(conn)
        some = loc.machine_locations(conn, ["vm-i2", "vm-nosite", "vm-lone"])
    assert set(refs) == {"vm-s1", "vm-s2", "vm-s3", "vm-i1", "vm-i2", "vm-lone"}
    store = refs["vm-s1"]
    assert (store.location_id, store.kind, store.declared) == ("st-q1", "store", True)
    assert store.name == "Cửa hàng tự động Quận 1"
    # The store's route reaches units that name none (written into their site on import).
    assert {refs[m].route_id for m in STORE} == {"r1"}
    # A location id without a row is accepted: an implicit store of its two units.
    assert (refs["vm-i1"].location_id, refs["vm-i1"].kind, refs["vm-i1"].declared) == (
        "acct-9",
        "store",
        False,
    )
    assert (refs["vm-i1"].route_id, refs["vm-i2"].route_id) == ("r2", None)
    # A site without a location is its own site.
    assert refs["vm-lone"] == loc.LocationRef(
        "vm-lone", "r3", "site", "Sảnh bệnh viện", declared=False
    )
    assert set(some) == {"vm-i2", "vm-lone"}  # vm-nosite has no site: not placed


def test_locations_list_declared_implicit_and_empty_ones(fleet: Engine) -> None:
    with fleet.connect() as conn:
        found = {location.id: location for location in loc.list_locations(conn)}
        with pytest.raises(NotFoundError, match="nowhere"):
            loc.get_location(conn, "nowhere")
    assert sorted(found) == ["acct-9", "bank-7", "st-q1", "vm-lone"]
    assert found["st-q1"].machines == STORE
    assert (found["st-q1"].timezone, found["st-q1"].lat) == ("Asia/Ho_Chi_Minh", 10.776)
    assert (found["bank-7"].kind, found["bank-7"].machines) == ("cabinet_bank", ())
    assert found["acct-9"].machines == ("vm-i1", "vm-i2")
    assert found["acct-9"].route_id == "r2"  # the only route its units name
    assert (found["vm-lone"].kind, found["vm-lone"].machines) == ("site", ("vm-lone",))


# --- rollups -----------------------------------------------------------------------------------


def test_store_summary_rolls_up_stock_alarms_and_todays_sales(fleet: Engine) -> None:
    with fleet.connect() as conn:
        summaries = {s.location.id: s for s in loc.store_summaries(conn, now=NOW, zone=UTC_ZONE)}
    store = summaries["st-q1"]
    mine = [lv for lv in LEVELS if lv.machine in STORE]
    assert store.selections == len(mine)
    assert store.empty == sum(lv.count == 0 for lv in mine)
    assert store.below_par == sum(lv.count < lv.par for lv in mine)
    assert store.units_in_stock == sum(lv.count for lv in mine)
    assert (store.open_alarms, store.critical_alarms) == (1, 1)  # vm-s2's was cleared
    assert (store.reported, store.online) == (2, 1)
    # "Today" is the store's own day (Ho Chi Minh City), not the UTC default passed in.
    start = datetime(2026, 3, 1, tzinfo=HCM)
    assert store.sales_since == start
    assert {t.currency: (t.count, t.total) for t in store.sales} == _sales_today(STORE, start)
    # Locations without a time zone use the zone given: UTC midnight, after YESTERDAY.
    lone = summaries["vm-lone"]
    assert lone.sales_since == datetime(2026, 3, 1, tzinfo=UTC_ZONE)
    assert [(t.currency, t.count, t.total) for t in lone.sales] == [("EUR", 1, 150)]
    implicit = summaries["acct-9"]
    assert (implicit.selections, implicit.open_alarms, implicit.critical_alarms) == (1, 1, 0)
    empty = summaries["bank-7"]
    assert (empty.selections, empty.open_alarms, empty.sales) == (0, 0, ())


def test_store_detail_has_stock_per_product_across_and_per_unit(fleet: Engine) -> None:
    with fleet.connect() as conn:
        detail = loc.store_detail(conn, "st-q1", now=NOW, zone=UTC_ZONE)
        with pytest.raises(NotFoundError):
            loc.store_detail(conn, "vm-nosite", now=NOW, zone=UTC_ZONE)
    mine = [lv for lv in LEVELS if lv.machine in STORE]
    products = sorted({lv.product for lv in mine})
    assert [p.product for p in detail.stock] == products
    for product in detail.stock:
        rows = [lv for lv in mine if lv.product == product.product]
        assert product.count == sum(lv.count for lv in rows)
        assert product.par == sum(lv.par for lv in rows)
        assert product.capacity == sum(lv.capacity for lv in rows)
        assert product.selections == len(rows)
        assert product.empty == sum(lv.count == 0 for lv in rows)
        assert [(u.machine_id, u.count) for u in product.units] == sorted(
            (lv.machine, lv.count) for lv in rows
        )
    units = {u.machine_id: u for u in detail.units}
    assert list(units) == list(STORE)
    assert (units["vm-s1"].online, units["vm-s1"].open_alarms, units["vm-s1"].empty) == (
        True,
        1,
        1,
    )
    assert (units["vm-s3"].reported, units["vm-s3"].selections, units["vm-s3"].route_id) == (
        False,
        0,
        "r1",
    )
    assert [(a.machine_id, a.code) for a in detail.alarms] == [("vm-s1", "jam")]
    start = datetime(2026, 3, 1, tzinfo=HCM)
    by_unit = {(s.machine_id, s.currency): (s.count, s.total) for s in detail.sales_by_unit}
    expected = {(m, c): v for m in STORE for c, v in _sales_today((m,), start).items()}
    assert by_unit == expected


def test_summaries_need_an_aware_now(fleet: Engine) -> None:
    with fleet.connect() as conn, pytest.raises(ValueError, match="timezone-aware"):
        loc.store_summaries(conn, now=NOW.replace(tzinfo=None), zone=UTC_ZONE)


# --- master data -------------------------------------------------------------------------------


def test_locations_round_trip_through_toml_and_csv(fleet: Engine, tmp_path: Path) -> None:
    dump = export_master_data(fleet)
    assert [row["id"] for row in dump["locations"]] == ["bank-7", "st-q1"]
    st = dump["locations"][1]
    assert (st["kind"], st["timezone"], st["address"]) == (
        "store",
        "Asia/Ho_Chi_Minh",
        "12 Lê Lợi, Quận 1",
    )
    (tmp_path / "again.toml").write_text(to_toml(dump), encoding="utf-8")
    folder = tmp_path / "csv"
    write_csvs(dump, folder)
    for source in (tmp_path / "again.toml", folder):
        with fleet.begin() as conn:
            conn.execute(machine_sites.delete())
            conn.execute(locations.delete())
        import_master_data(fleet, [source])
        assert export_master_data(fleet) == dump


def test_bad_locations_are_named_with_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "locations.csv"
    bad.write_text(
        "id,kind,timezone,lat,lon\nx1,kiosk,,,\nx2,store,Mars/Olympus,,\nx3,store,,10.5,\n",
        encoding="utf-8",
    )
    with pytest.raises(MasterDataError) as caught:
        read_files([bad])
    assert caught.value.problems == (
        (
            f"{bad}:2: locations #1: field kind: expected one of site, store, cabinet_bank, got "
            "'kiosk'"
        ),
        (
            f"{bad}:3: locations #2: field timezone: unknown time zone 'Mars/Olympus' (expected "
            "a name such as Asia/Ho_Chi_Minh)"
        ),
        f"{bad}:4: locations #3: field lon: give lat and lon together, or neither",
    )


def test_moving_a_store_to_another_route_alone_is_refused(fleet: Engine, tmp_path: Path) -> None:
    moved = tmp_path / "locations.csv"
    moved.write_text("id,kind,route_id\nst-q1,store,r9\nnew-1,site,r9\n", encoding="utf-8")
    with pytest.raises(MasterDataError) as caught:
        import_master_data(fleet, [moved])
    # Its units are on r1 (vm-s2 names it, vm-s1 and vm-s3 took it from the store).
    assert caught.value.problems == tuple(
        f"{moved}:2: locations #1: field route_id: 'r9' differs from route 'r1' of the stored "
        f"site {m!r} (import that site too, with the same route)"
        for m in STORE
    )
    with fleet.connect() as conn:
        assert loc.get_location(conn, "st-q1").route_id == "r1"
        assert "new-1" not in {x.id for x in loc.list_locations(conn)}  # nothing written


def test_a_site_on_another_route_than_its_location_is_refused(
    fleet: Engine, tmp_path: Path
) -> None:
    sites = tmp_path / "sites.csv"
    sites.write_text(
        "machine_id,lat,lon,location_id,route_id\nvm-s3,10,106,st-q1,r2\n", encoding="utf-8"
    )
    with pytest.raises(MasterDataError) as caught:
        import_master_data(fleet, [sites])
    assert caught.value.problems == (
        (
            f"{sites}:2: sites #1: field route_id: 'r2' differs from route 'r1' of its location "
            "'st-q1' (a location's units share one route)"
        ),
    )
