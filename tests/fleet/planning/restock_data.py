"""A small fleet for the restocking tests: master data as an operator writes it, and the
telemetry its machines send, put into a store through the real import and ingest paths.

vm-a: live telemetry, a full cash box; vm-b: live telemetry, sold out (B1 reports 0,
A1 raised an `empty` alarm); vm-d: DEX only, filled at a visit four days ago; vm-x sends
telemetry but has no site. Every time the tests check against is listed here.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from fleet.ingest import Ingestor, Received
from fleet.planning.masterdata import import_master_data
from protocols.telemetry import (
    AlarmCode,
    AlarmState,
    Body,
    SaleLine,
    SelectionStock,
    ServiceAction,
    ServiceActionEntry,
    Severity,
    StockKind,
)
from protocols.telemetry.bodies_ops import DexReadBody, DexSelectionSummary
from tests.fleet.conftest import body, message

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # 19:00 in Ho Chi Minh City
PLAN_DAY = "2026-03-11"

MASTER_TOML = """\
currency = "VND"

[[products]]
sku = "cola"
name = "Cola 330ml"
case_quantity = 24
pack_rule = "case"
unit_cost = 6000
unit_margin = 4000
shelf_life_days = 270

[[products]]
sku = "chips"
name = "Khoai tây chiên"
case_quantity = 12
pack_rule = "unit"
unit_margin = 3000

[[depots]]
id = "wh"
name = "Kho Quận 7"
lat = 10.770
lon = 106.700
open = "05:00"
close = "22:00"

[[vans]]
id = "v1"
depot = "wh"
capacity = 200
shift_start = "06:00"
shift_end = "18:00"
cost_per_km = 4000

[[vans]]
id = "v2"
depot = "wh"
capacity = 200
shift_start = "06:00"
shift_end = "18:00"
cost_per_km = 4000
fixed_cost = 50000

[[sites]]
machine_id = "vm-a"
lat = 10.780
lon = 106.700
access_start = "07:00"
access_end = "12:00"
route_id = "r1"

[[sites]]
machine_id = "vm-b"
lat = 10.770
lon = 106.712
route_id = "r1"
service_fixed_min = 12.5
weights = { min_score = 20, max_days_between_visits = 7 }

[[sites]]
machine_id = "vm-d"
lat = 10.762
lon = 106.694
has_telemetry = false
route_id = "r2"
"""

PLANOGRAM_CSV = """\
machine_id,selection,sku,capacity,par,threshold,core
vm-a,A1,cola,40,36,6,true
vm-a,B1,chips,20,16,4,false
vm-b,A1,cola,40,36,6,true
vm-b,B1,chips,20,16,4,false
vm-d,A1,cola,40,36,,true
vm-d,B1,chips,20,16,,
"""

CAPACITY = {"A1": 40, "B1": 20}
VAN_CAPACITY = 200
ACCESS_A = (7 * 60, 12 * 60)  # local minutes

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
A_SNAPSHOT = NOW - 6 * DAY  # vm-a: A1 36, B1 16
A_LEVEL = NOW - 29 * HOUR - 30 * MINUTE  # vm-a: A1 reports 20 (09 Mar 06:30 UTC)
# Three a day at 02:00, 04:00 and 06:00 UTC, plus one 15 minutes after A_LEVEL: the
# 06:00 and 06:45 sales share an hour but fall on either side of that level.
A_SALES_A1 = [NOW - d * DAY + k * 2 * HOUR - 10 * HOUR for d in range(6, 0, -1) for k in range(3)]
A_SALES_A1.append(A_LEVEL + 15 * MINUTE)
A_LATE_SALE = NOW + HOUR  # after `now`: must be ignored
A_BASKET = NOW - 20 * HOUR  # one basket sale: 2 x B1
A_CASH_FULL = NOW - 5 * HOUR
A_TUBES_LOW, A_TUBES_OK = NOW - 10 * HOUR, NOW - 9 * HOUR
B_VISIT = NOW - 2 * DAY - HOUR
B_SNAPSHOT = NOW - 2 * DAY  # vm-b: A1 3, B1 0
B_SALES_A1 = [B_SNAPSHOT + k * 5 * HOUR for k in (1, 2, 3)]
B_EMPTY = NOW - 3 * HOUR
D_VISIT_OPEN, D_VISIT = NOW - 4 * DAY - HOUR, NOW - 4 * DAY
D_READS = [(NOW - 4 * DAY + HOUR, 100, 50), (NOW - 2 * DAY, 110, 55), (NOW - HOUR, 118, 59)]
D_SERIAL = "VF-0099"


def write_master(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    fleet, planogram = folder / "fleet.toml", folder / "planogram.csv"
    fleet.write_text(MASTER_TOML, encoding="utf-8")
    planogram.write_text(PLANOGRAM_CSV, encoding="utf-8")
    return [fleet, planogram]


def _stock(kind: StockKind, levels: dict[str, int]) -> Body:
    rows = [
        SelectionStock(
            code=code,
            product=code,
            count=count,
            capacity=CAPACITY[code],
            par=CAPACITY[code] - 4,
            price=12000,
            in_service=True,
        )
        for code, count in levels.items()
    ]
    return body("stock").model_copy(update={"kind": kind, "selections": rows})


def _sale(selection: str, lines: list[SaleLine] | None = None) -> Body:
    return body("sale").model_copy(update={"selection": selection, "lines": lines})


def _alarm(code: AlarmCode, state: AlarmState, selection: str | None = None) -> Body:
    return body("alarm").model_copy(
        update={
            "code": code,
            "state": state,
            "severity": Severity.WARNING,
            "device": None,
            "selection": selection,
        }
    )


def _visit(opened: datetime, closed: datetime, actions: list[ServiceActionEntry]) -> Body:
    return body("service").model_copy(
        update={"opened_at": opened, "closed_at": closed, "actions": actions}
    )


def _dex(at: datetime, a1: int, b1: int) -> Body:
    example = body("dex")
    assert isinstance(example, DexReadBody)
    summary = example.summary.model_copy(
        update={
            "machine_serial": D_SERIAL,
            "selections": [
                DexSelectionSummary(selection="A1", vends=a1),
                DexSelectionSummary(selection="B1", vends=b1),
            ],
        }
    )
    return example.model_copy(update={"read_at": at, "summary": summary})


def telemetry() -> list[Received]:
    """Every machine's messages, seqs contiguous per machine in time order."""
    timeline: list[tuple[datetime, str, Body]] = [
        (A_SNAPSHOT, "vm-a", _stock(StockKind.SNAPSHOT, {"A1": 36, "B1": 16})),
        (A_LEVEL, "vm-a", _stock(StockKind.CHANGE, {"A1": 20})),
        (A_LATE_SALE, "vm-a", _sale("A1")),
        (
            A_BASKET,
            "vm-a",
            _sale("B1", [SaleLine(selection="B1", product="chips", quantity=2, unit_price=9000)]),
        ),
        (A_CASH_FULL, "vm-a", _alarm(AlarmCode.CASH_BOX_FULL, AlarmState.RAISED)),
        (A_TUBES_LOW, "vm-a", _alarm(AlarmCode.TUBES_LOW, AlarmState.RAISED)),
        (A_TUBES_OK, "vm-a", _alarm(AlarmCode.TUBES_LOW, AlarmState.CLEARED)),
        (B_VISIT, "vm-b", _visit(B_VISIT - HOUR, B_VISIT, [])),
        (B_SNAPSHOT, "vm-b", _stock(StockKind.SNAPSHOT, {"A1": 3, "B1": 0})),
        (B_EMPTY, "vm-b", _alarm(AlarmCode.EMPTY, AlarmState.RAISED, "A1")),
        (
            D_VISIT,
            "vm-d",
            _visit(
                D_VISIT_OPEN,
                D_VISIT,
                [
                    ServiceActionEntry(action=ServiceAction.FILL, selection="A1", count=30),
                    ServiceActionEntry(action=ServiceAction.FILL, selection="B1", count=10),
                ],
            ),
        ),
        (NOW - 2 * HOUR, "vm-x", _sale("A1")),
    ]
    timeline += [(at, "vm-a", _sale("A1")) for at in A_SALES_A1]
    timeline += [(at, "vm-b", _sale("A1")) for at in B_SALES_A1]
    timeline += [(at, "vm-d", _dex(at, a1, b1)) for at, a1, b1 in D_READS]
    timeline.sort(key=lambda item: item[0])
    seqs: dict[str, int] = defaultdict(int)
    out = []
    for at, machine, item in timeline:
        seqs[machine] += 1
        seq = seqs[machine]
        # The builder stamps at + seq seconds; shift so the envelope carries `at` exactly.
        out.append(message(item, seq, machine, at=at - timedelta(seconds=seq)))
    return out


def fill_store(engine: Engine, folder: Path) -> dict[str, int]:
    """Master data through the importer, telemetry through ingest; returns import counts."""
    counts = import_master_data(engine, write_master(folder))
    report = Ingestor(engine, clock=lambda: NOW).ingest(telemetry())
    assert report.quarantined == 0
    return counts
