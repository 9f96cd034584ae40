"""Ingest against real databases (SQLite file and PostgreSQL): every kind, duplicates,
out-of-order delivery, gaps with one resync, quarantine."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from fleet.commands import register_machine
from fleet.ingest import Ingestor, Received
from fleet.resync import request_due_resyncs
from fleet.store.models import (
    alarms,
    cash_movements,
    commands,
    dex_reads,
    events,
    gaps,
    machines,
    quarantine,
    refunds,
    sales,
    service_visits,
    status_reports,
    stock_levels,
)
from protocols.telemetry import (
    AckOutcome,
    AlarmState,
    CommandAckBody,
    Kind,
    ReplayGuard,
    Resync,
    StockKind,
    command_topic,
    decode_command,
    verify,
)
from tests.fleet.conftest import KEY, T0, body, message, sale

NOW = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


def ingestor(engine: Engine) -> Ingestor:
    return Ingestor(engine, clock=lambda: NOW)


def count(engine: Engine, table: object, *where: object) -> int:
    with engine.connect() as conn:
        stmt = select(func.count()).select_from(table)  # type: ignore[arg-type]
        for clause in where:
            stmt = stmt.where(clause)  # type: ignore[arg-type]
        return int(conn.execute(stmt).scalar_one())


def machine_row(engine: Engine, machine: str = "vm-0001") -> Any:
    with engine.connect() as conn:
        return conn.execute(select(machines).where(machines.c.id == machine)).one()


def test_every_kind_lands_in_its_table(engine: Engine) -> None:
    kinds = [k for k in Kind if k is not Kind.STATUS]
    batch = [message(body(kind.value), seq) for seq, kind in enumerate(kinds, start=1)]
    batch.append(message(body("status"), len(kinds)))
    report = ingestor(engine).ingest(batch)
    assert (report.stored, report.statuses, report.quarantined) == (len(kinds), 1, 0)
    assert count(engine, events) == len(kinds)
    for table in (sales, refunds, cash_movements, dex_reads, service_visits, alarms):
        assert count(engine, table) == 1, table.name
    with engine.connect() as conn:
        s = conn.execute(select(sales)).one()
        assert (s.price, s.currency, s.product, s.seq) == (
            12000,
            "VND",
            "Trà xanh Không Độ 455ml",
            1,
        )
        assert json.loads(s.cash)["bills"] == [{"value": 10000, "count": 1}]
        cash = conn.execute(select(cash_movements)).one()
        assert (cash.kind, cash.amount) == ("collection", 1_450_000)
        level = conn.execute(select(stock_levels)).one()._mapping
        assert [level[k] for k in ("selection", "count", "capacity", "par")] == ["A3", 6, 10, 8]
        alarm = conn.execute(select(alarms)).one()
        assert (alarm.code, alarm.cleared_at) == ("tubes_low", None)
        dex = conn.execute(select(dex_reads)).one()
        assert dex.raw.startswith("DXS*")
        assert json.loads(dex.summary)["segments"] == 5
        visit = conn.execute(select(service_visits)).one()
        assert visit.operator == "route-3"
        assert visit.closed_at is not None
        assert conn.execute(select(status_reports.c.online)).scalar_one() is True
    row = machine_row(engine)
    assert row.online is True
    assert row.firmware == "vendfleet 0.1.0"
    assert (row.last_seq, row.max_seq) == (len(kinds), len(kinds))


def test_duplicates_change_nothing(engine: Engine) -> None:
    ing = ingestor(engine)
    first = ing.ingest([sale(1), sale(2)])
    again = ing.ingest([sale(1), sale(2), sale(2)])
    assert (first.stored, first.duplicates) == (2, 0)
    assert (again.stored, again.duplicates) == (0, 3)
    assert count(engine, events) == 2
    assert count(engine, sales) == 2


def test_a_duplicate_with_a_different_body_keeps_the_first(engine: Engine) -> None:
    ing = ingestor(engine)
    ing.ingest([sale(1, price=12000)])
    ing.ingest([sale(1, price=99999)])
    with engine.connect() as conn:
        assert conn.execute(select(sales.c.price)).scalar_one() == 12000


def test_out_of_order_delivery_ends_contiguous(engine: Engine) -> None:
    ing = ingestor(engine)
    for seq in (3, 1, 5, 2, 4):
        ing.ingest([sale(seq)])
    row = machine_row(engine)
    assert (row.last_seq, row.max_seq) == (5, 5)
    assert count(engine, gaps, gaps.c.filled_at.is_(None)) == 0


def test_a_gap_records_one_resync_and_filling_closes_it(engine: Engine) -> None:
    with engine.begin() as conn:
        register_machine(conn, "vm-0001", KEY, T0)
    ing = ingestor(engine)
    ing.ingest([sale(1)])
    report = ing.ingest([sale(5)])
    ing.ingest([sale(6)])
    ing.ingest([sale(9)])  # a second gap is covered by the resync already out
    assert report.gaps_opened == 1
    assert len(report.commands) == 1
    assert count(engine, commands) == 1
    with engine.connect() as conn:
        open_gaps = conn.execute(
            select(gaps.c.from_seq, gaps.c.to_seq, gaps.c.resync_command_id)
            .where(gaps.c.filled_at.is_(None))
            .order_by(gaps.c.from_seq)
        ).all()
        command = conn.execute(select(commands)).one()
    assert [(g.from_seq, g.to_seq) for g in open_gaps] == [(2, 4), (7, 8)]
    assert {g.resync_command_id for g in open_gaps} == {command.id}
    resync = decode_command(command_topic("vm-0001", "resync"), command.payload)
    assert isinstance(resync, Resync)
    assert resync.args.after_seq == 1
    verdict = verify(resync, key=KEY, machine_id="vm-0001", now=NOW, guard=ReplayGuard())
    assert verdict.ok, verdict.reason
    # The machine re-sends: a seq in the middle splits the gap, the rest fill it.
    ing.ingest([sale(3)])
    with engine.connect() as conn:
        ranges = conn.execute(
            select(gaps.c.from_seq, gaps.c.to_seq)
            .where(gaps.c.filled_at.is_(None))
            .order_by(gaps.c.from_seq)
        ).all()
    assert [tuple(r) for r in ranges] == [(2, 2), (4, 4), (7, 8)]
    ing.ingest([sale(2), sale(4), sale(7), sale(8)])
    assert count(engine, gaps, gaps.c.filled_at.is_(None)) == 0
    assert count(engine, gaps, gaps.c.filled_at.is_not(None)) >= 2
    row = machine_row(engine)
    assert (row.last_seq, row.max_seq) == (9, 9)
    assert count(engine, commands) == 1


def test_a_gap_without_a_key_is_recorded_but_sends_nothing(engine: Engine) -> None:
    ing = ingestor(engine)
    ing.ingest([sale(1), sale(4)])
    assert count(engine, commands) == 0
    with engine.connect() as conn:
        gap = conn.execute(select(gaps)).one()
    assert (gap.from_seq, gap.to_seq, gap.resync_command_id) == (2, 3, None)


def test_garbage_is_quarantined_with_reason_and_bytes(engine: Engine) -> None:
    good = sale(1)
    bad = [
        Received("vend/v1/vm-0001/sale", b"\xff\xfenot json", T0),
        Received(
            "vend/v1/vm-0001/sale", good.payload.replace(b'"price":12000', b'"price":12.5'), T0
        ),
        Received("vend/v1/vm-0002/sale", good.payload, T0),  # machine publishing as another
        Received("elsewhere/topic", b"{}", T0),
    ]
    report = ingestor(engine).ingest([*bad, good])
    assert (report.quarantined, report.stored) == (4, 1)
    with engine.connect() as conn:
        rows = conn.execute(select(quarantine).order_by(quarantine.c.id)).all()
    assert [r.payload for r in rows] == [m.payload for m in bad]
    assert "not JSON" in rows[0].reason
    assert "price" in rows[1].reason
    assert "float" in rows[1].reason
    assert "does not match topic machine" in rows[2].reason
    assert "foreign topic" in rows[3].reason


def test_stock_levels_follow_the_newest_seq(engine: Engine) -> None:
    stock = body("stock")
    row = stock.selections[0]  # type: ignore[union-attr]
    newer = stock.model_copy(update={"selections": [row.model_copy(update={"count": 2})]})
    older = stock.model_copy(update={"selections": [row.model_copy(update={"count": 9})]})
    ing = ingestor(engine)
    ing.ingest([message(newer, 5)])
    ing.ingest([message(older, 4)])  # delivered late: must not win
    with engine.connect() as conn:
        assert conn.execute(select(stock_levels.c.count)).scalar_one() == 2
    other = row.model_copy(update={"code": "B1", "count": 7})
    snapshot = stock.model_copy(update={"kind": StockKind.SNAPSHOT, "selections": [other]})
    ing.ingest([message(snapshot, 6)])
    with engine.connect() as conn:
        assert conn.execute(select(stock_levels.c.selection, stock_levels.c.count)).all() == [
            ("B1", 7)
        ]


def test_alarm_clear_pairs_with_raise_in_either_order(engine: Engine) -> None:
    raised = body("alarm")
    cleared = raised.model_copy(update={"state": AlarmState.CLEARED})
    ing = ingestor(engine)
    ing.ingest([message(raised, 1), message(cleared, 2)])
    ing.ingest([message(cleared, 4)])  # clear overtakes its raise
    ing.ingest([message(raised, 3)])
    with engine.connect() as conn:
        rows = conn.execute(select(alarms).order_by(alarms.c.raised_seq)).all()
    assert [(r.raised_seq, r.cleared_seq) for r in rows] == [(1, 2), (3, 4)]
    assert all(r.raised_at is not None and r.cleared_at is not None for r in rows)


def test_ack_updates_the_command(engine: Engine) -> None:
    with engine.begin() as conn:
        register_machine(conn, "vm-0001", KEY, T0)
    ing = ingestor(engine)
    report = ing.ingest([sale(1), sale(3)])
    (command,) = report.commands
    ack = CommandAckBody(
        command_id=command.id, name="resync", outcome=AckOutcome.APPLIED, detail="ok"
    )
    ing.ingest([message(ack, 4)])
    with engine.connect() as conn:
        row = conn.execute(select(commands)).one()
    assert (row.ack_outcome, row.ack_detail) == ("applied", "ok")
    assert row.acked_at is not None


def test_status_offline_will_wins_a_tie_and_older_status_is_history(engine: Engine) -> None:
    online = body("status")
    offline = online.model_copy(update={"online": False})
    ing = ingestor(engine)
    ing.ingest([message(online, 10), message(offline, 10)])
    assert machine_row(engine).online is False
    ing.ingest([message(online, 12)])
    ing.ingest([message(offline, 11)])  # older: kept as history only
    assert machine_row(engine).online is True
    assert count(engine, status_reports) == 4
    assert count(engine, events) == 0  # statuses take no seq


def test_deferred_resync_is_asked_once_after_the_grace(engine: Engine) -> None:
    with engine.begin() as conn:
        register_machine(conn, "vm-0001", KEY, T0)
    ing = Ingestor(engine, clock=lambda: NOW, resync_at_once=False)
    report = ing.ingest([sale(1), sale(4)])
    assert report.gaps_opened == 1
    assert report.commands == []
    grace, ttl = timedelta(seconds=3), timedelta(minutes=10)
    with engine.begin() as conn:
        assert request_due_resyncs(conn, now=NOW, grace=grace, ttl=ttl) == []  # too young
    later = NOW + timedelta(seconds=5)
    with engine.begin() as conn:
        (command,) = request_due_resyncs(conn, now=later, grace=grace, ttl=ttl)
    with engine.begin() as conn:
        assert request_due_resyncs(conn, now=later, grace=grace, ttl=ttl) == []
        gap = conn.execute(select(gaps)).one()
    assert gap.resync_command_id == command.id
    # Still open when the resync expires: ask again, once.
    expired = later + ttl + timedelta(seconds=1)
    with engine.begin() as conn:
        assert len(request_due_resyncs(conn, now=expired, grace=grace, ttl=ttl)) == 1
