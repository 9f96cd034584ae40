"""The operators' read side against SQLite and PostgreSQL, with data that came in through
the real ingest path (decode, store, project)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from fleet import queries
from fleet.ingest import Ingestor, Received
from fleet.queries import SalesGrouping
from protocols.telemetry import (
    AlarmBody,
    AlarmCode,
    AlarmState,
    Body,
    CashBody,
    CashKind,
    PaymentMethod,
    SaleBody,
    SelectionStock,
    Severity,
    StatusBody,
    StockBody,
    StockKind,
    TubeCount,
)
from tests.fleet.conftest import T0, message

H = timedelta(hours=1)


def sale_body(selection: str, product: str, price: int, currency: str, method: str) -> SaleBody:
    return SaleBody(
        vend_id=price,
        selection=selection,
        product=product,
        price=price,
        currency=currency,
        method=PaymentMethod(method),
        reader=1 if method == "cashless" else None,
    )


def status_body(*, online: bool, backlog: int | None) -> StatusBody:
    return StatusBody(
        online=online,
        firmware="fw-1",
        config_version="cfg-7",
        started_at=T0 - H,
        outbox_backlog=backlog,
    )


def row(code: str, product: str, count: int, price: int) -> SelectionStock:
    return SelectionStock(
        code=code, product=product, count=count, capacity=10, par=5, price=price, in_service=True
    )


def alarm(code: AlarmCode, state: AlarmState, severity: Severity, **kw: str) -> AlarmBody:
    return AlarmBody(code=code, state=state, severity=severity, **kw)


VM1: list[tuple[Body, datetime]] = [
    (
        StockBody(
            kind=StockKind.SNAPSHOT,
            currency="VND",
            selections=[
                row("A1", "Water", 0, 10000),
                row("A2", "Juice", 3, 15000),
                row("A3", "Tea", 8, 12000),
            ],
        ),
        T0,
    ),
    (sale_body("A1", "Water", 10000, "VND", "cash"), T0),
    (sale_body("A1", "Water", 10000, "VND", "cash"), T0),
    (CashBody(kind=CashKind.COLLECTION, amount=50000, currency="VND"), T0),
    (sale_body("A2", "Juice", 15000, "VND", "cash"), T0 + H),
    (sale_body("A3", "Tea", 12000, "VND", "cashless"), T0 + H),
    (
        CashBody(
            kind=CashKind.TUBE_FILL,
            amount=20000,
            currency="VND",
            tubes=[TubeCount(coin_type=0, value=1000, count=20)],
        ),
        T0 + H,
    ),
    (alarm(AlarmCode.JAM, AlarmState.RAISED, Severity.CRITICAL, selection="A1"), T0 + H),
    (alarm(AlarmCode.TUBES_LOW, AlarmState.RAISED, Severity.WARNING, device="changer"), T0 + H),
    (alarm(AlarmCode.TUBES_LOW, AlarmState.CLEARED, Severity.WARNING, device="changer"), T0 + H),
]


def fleet_messages() -> list[Received]:
    batch = [message(b, seq, "vm-0001", at=at) for seq, (b, at) in enumerate(VM1, start=1)]
    batch.append(message(status_body(online=True, backlog=3), 10, "vm-0001"))
    coffee = [(1, 150, "cash", T0 + H / 2), (2, 150, "cashless", T0 + 3 * H)]
    coffee.append((5, 200, "cash", T0 + 3 * H))  # 3 and 4 never arrive: a gap
    for seq, price, method, at in coffee:
        batch.append(
            message(sale_body("B1", "Coffee", price, "EUR", method), seq, "vm-0002", at=at)
        )
    batch.append(message(status_body(online=False, backlog=None), 5, "vm-0002"))
    batch.append(Received("vend/v1/vm-0002/sale", b"{not json", T0))
    return batch


@pytest.fixture
def fleet(engine: Engine) -> Engine:
    report = Ingestor(engine).ingest(fleet_messages())
    assert report.stored == 13
    return engine


def test_status_counts_machines_sales_alarms_backlog_gaps_and_quarantine(fleet: Engine) -> None:
    with fleet.connect() as conn:
        status = queries.fleet_status(conn, sales_since=T0)
        later = queries.fleet_status(conn, sales_since=T0 + 2 * H)
    assert (status.machines, status.online, status.offline, status.unknown) == (2, 1, 1, 0)
    assert status.sales == (
        queries.MoneyTotal("EUR", 3, 500),
        queries.MoneyTotal("VND", 4, 47000),
    )
    assert later.sales == (queries.MoneyTotal("EUR", 2, 350),)
    assert (status.open_alarms, status.critical_alarms) == (1, 1)
    assert (status.outbox_backlog, status.machines_with_backlog) == (3, 1)
    assert (status.open_gaps, status.missing_events) == (1, 2)
    assert status.quarantined == 1


def test_machine_list_has_state_versions_and_counts(fleet: Engine) -> None:
    with fleet.connect() as conn:
        vm1, vm2 = queries.list_machines(conn)
    assert (vm1.id, vm1.online, vm1.firmware, vm1.config_version) == (
        "vm-0001",
        True,
        "fw-1",
        "cfg-7",
    )
    assert (vm1.selections, vm1.empty, vm1.below_par) == (3, 1, 2)
    assert (vm1.open_alarms, vm1.open_gaps, vm1.outbox_backlog) == (1, 0, 3)
    assert (vm1.last_seq, vm1.max_seq, vm1.keyed) == (10, 10, False)
    assert (vm2.id, vm2.online, vm2.open_gaps, vm2.selections) == ("vm-0002", False, 1, 0)
    assert (vm2.last_seq, vm2.max_seq) == (2, 5)
    assert vm2.last_seen is not None
    assert vm2.last_seen.tzinfo is not None


def test_machine_detail_has_stock_cash_alarms_and_last_events(fleet: Engine) -> None:
    with fleet.connect() as conn:
        detail = queries.machine_detail(conn, "vm-0001", last_events=3)
    assert [(s.selection, s.product, s.count, s.price) for s in detail.stock] == [
        ("A1", "Water", 0, 10000),
        ("A2", "Juice", 3, 15000),
        ("A3", "Tea", 8, 12000),
    ]
    cash = detail.cash
    assert cash.tubes == (queries.TubeLevel(0, 1000, 20),)
    assert cash.tubes_at == T0 + H + timedelta(seconds=7)
    assert cash.last_collection_at == T0 + timedelta(seconds=4)
    assert cash.last_collection_amount == 50000
    # After the collection only the Juice was paid in cash (the Tea was cashless).
    assert (cash.cash_sales_since_collection, cash.cash_sales_count) == (15000, 1)
    assert cash.currency == "VND"
    assert [(a.code, a.selection) for a in detail.alarms] == [("jam", "A1")]
    assert [e.seq for e in detail.events] == [8, 9, 10]
    assert "raised jam critical A1" in detail.events[0].summary


def test_machine_detail_of_an_unknown_machine_is_not_found(fleet: Engine) -> None:
    with fleet.connect() as conn, pytest.raises(queries.NotFoundError, match="vm-9999"):
        queries.machine_detail(conn, "vm-9999")


def test_alarms_open_all_and_filtered(fleet: Engine) -> None:
    with fleet.connect() as conn:
        open_now = queries.list_alarms(conn)
        everything = queries.list_alarms(conn, open_only=False)
        critical = queries.list_alarms(conn, open_only=False, severity="critical")
        by_code = queries.list_alarms(conn, open_only=False, code="tubes_low")
        other = queries.list_alarms(conn, open_only=False, machine_id="vm-0002")
        recent = queries.list_alarms(conn, open_only=False, since=T0 + H + timedelta(seconds=9))
    assert [a.code for a in open_now] == ["jam"]
    assert [a.code for a in everything] == ["tubes_low", "jam"]  # newest first
    assert everything[0].cleared_at == T0 + H + timedelta(seconds=10)
    assert [a.code for a in critical] == ["jam"]
    assert [a.code for a in by_code] == ["tubes_low"]
    assert other == []
    assert [a.code for a in recent] == ["tubes_low"]


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        (
            SalesGrouping.MACHINE,
            [("vm-0001", "VND", 4, 47000), ("vm-0002", "EUR", 1, 150)],
        ),
        (
            SalesGrouping.PRODUCT,
            [
                ("Coffee", "EUR", 1, 150),
                ("Juice", "VND", 1, 15000),
                ("Tea", "VND", 1, 12000),
                ("Water", "VND", 2, 20000),
            ],
        ),
        (
            SalesGrouping.HOUR,
            [
                ("2026-03-01T08:00:00Z", "EUR", 1, 150),
                ("2026-03-01T08:00:00Z", "VND", 2, 20000),
                ("2026-03-01T09:00:00Z", "VND", 2, 27000),
            ],
        ),
    ],
)
def test_sales_grouped_over_a_period(
    fleet: Engine, by: SalesGrouping, expected: list[tuple[str, str, int, int]]
) -> None:
    with fleet.connect() as conn:
        rows = queries.sales_by(conn, start=T0, end=T0 + 2 * H, by=by)
    assert [(r.key, r.currency, r.count, r.total) for r in rows] == expected


def test_sales_period_bounds_are_compared_in_utc(fleet: Engine) -> None:
    saigon = T0.astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))  # 15:00 there
    with fleet.connect() as conn:
        rows = queries.sales_totals(conn, start=saigon + H, end=saigon + 2 * H)
        with pytest.raises(ValueError, match="empty period"):
            queries.sales_by(conn, start=T0, end=T0, by=SalesGrouping.MACHINE)
    assert rows == (queries.MoneyTotal("VND", 2, 27000),)


def test_event_tail_returns_only_what_came_after_the_cursor(fleet: Engine) -> None:
    with fleet.connect() as conn:
        cursor = queries.last_event_id(conn)
        assert queries.events_after(conn, cursor) == []
        newest = queries.recent_events(conn, 2, machine_id="vm-0002")
    assert [e.seq for e in newest] == [2, 5]
    Ingestor(fleet).ingest(
        [
            message(sale_body("B1", "Coffee", 150, "EUR", "cash"), 3, "vm-0002"),
            message(sale_body("A3", "Tea", 12000, "VND", "cash"), 11, "vm-0001"),
        ]
    )
    with fleet.connect() as conn:
        after = queries.events_after(conn, cursor)
        only_vm2 = queries.events_after(conn, cursor, machine_id="vm-0002")
    assert sorted((e.machine_id, e.seq) for e in after) == [("vm-0001", 11), ("vm-0002", 3)]
    assert [e.seq for e in only_vm2] == [3]
    assert only_vm2[0].summary == "B1 Coffee 1.50 EUR cash"
    assert all(e.id > cursor for e in after)
    assert after[0].ts.tzinfo == UTC


@pytest.mark.parametrize(
    ("schema", "body", "expected"),
    [
        ("vend.sale", "[1]", "(unreadable body)"),
        ("vend.sale", "{not json", "(unreadable body)"),
        ("vend.sale", '{"selection": "A1"}', "(unreadable body)"),
        ("vend.dex", '{"reset": true}', "DEX read (counters reset)"),
        ("vend.future", "{}", "vend.future"),
    ],
)
def test_event_descriptions_never_raise(schema: str, body: str, expected: str) -> None:
    assert queries.describe_event(schema, body) == expected
