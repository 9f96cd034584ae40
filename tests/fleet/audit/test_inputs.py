"""Cash counts and settlement imports: exact amounts, named errors, idempotent imports."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from fleet.audit.amounts import parse_amount, parse_cash
from fleet.audit.inputs import (
    CashCountEntry,
    import_cash_counts,
    import_settlements,
    load_mapping,
    parse_settlements,
    record_cash_count,
)
from fleet.audit.records import AuditError
from fleet.store.audit_models import audit_cash_counts, audit_settlements

NOW = datetime(2026, 4, 1, tzinfo=UTC)
TZ = "Asia/Ho_Chi_Minh"


@pytest.mark.parametrize(
    ("text", "places", "minor"),
    [("12000", 0, 12000), ("-12,50", 2, -1250), ("3.5", 2, 350), (" 7 ", 0, 7), ("0.05", 2, 5)],
)
def test_amounts_are_exact(text: str, places: int, minor: int) -> None:
    assert parse_amount(text, places) == minor


@pytest.mark.parametrize("text", ["", "1e3", "12.345", "abc", "1.2.3", "--1"])
def test_bad_amounts_are_named(text: str) -> None:
    with pytest.raises(AuditError):
        parse_amount(text, 2)


def test_cash_is_a_total_or_denominations() -> None:
    assert parse_cash("1450000") == 1_450_000
    assert parse_cash("10000x40, 20000x50") == 1_400_000
    assert parse_cash("500x3;200*2") == 1_900
    for bad in ("-5", "10000x", "x3", ""):
        with pytest.raises(AuditError):
            parse_cash(bad)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=20))
def test_garbage_cash_text_only_raises_audit_errors(text: str) -> None:
    with contextlib.suppress(AuditError):
        assert parse_cash(text) >= 0


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(audit_cash_counts)) or 0)


def test_a_cash_count_is_recorded_once_and_corrected_only_on_purpose(engine: Engine) -> None:
    entry = CashCountEntry("vm-1", "v1", coins=500, bills=20_000, at=NOW)
    with engine.begin() as conn:
        assert record_cash_count(conn, entry, now=NOW) == "recorded"
        assert record_cash_count(conn, entry, now=NOW) == "unchanged"
        changed = CashCountEntry("vm-1", "v1", coins=500, bills=30_000, at=NOW)
        with pytest.raises(AuditError, match="--replace"):
            record_cash_count(conn, changed, now=NOW)
        assert record_cash_count(conn, changed, now=NOW, replace_existing=True) == "replaced"
    assert _count(engine) == 1
    with engine.begin() as conn, pytest.raises(AuditError, match="--at"):
        record_cash_count(conn, CashCountEntry("vm-1", "v2", coins=0, bills=0), now=NOW)


def test_cash_csv_import_is_idempotent_and_names_the_bad_cell(
    engine: Engine, tmp_path: Path
) -> None:
    good = tmp_path / "counts.csv"
    good.write_text(
        "machine,visit,at,coins,bills,change_added\n"
        "vm-1,v1,2026-03-05T14:00,500x4,10000x3,0\n"
        "vm-2,v1,2026-03-05T15:00,0,50000,10000\n",
        encoding="utf-8",
    )
    first = import_cash_counts(engine, good, now=NOW, timezone=TZ)
    again = import_cash_counts(engine, good, now=NOW, timezone=TZ)
    assert (first.imported, again.imported, again.unchanged) == (2, 0, 2)
    with engine.connect() as conn:
        row = conn.execute(
            select(audit_cash_counts).where(audit_cash_counts.c.machine_id == "vm-1")
        ).one()
    assert (row.coins, row.bills) == (2_000, 30_000)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "machine,visit,at,coins,bills\nvm-3,v1,2026-03-05T14:00,12.5,0\n", encoding="utf-8"
    )
    with pytest.raises(AuditError, match=r"bad\.csv:2: column 'coins'"):
        import_cash_counts(engine, bad, now=NOW, timezone=TZ)
    missing = tmp_path / "missing.csv"
    missing.write_text("machine,coins\nvm-3,1\n", encoding="utf-8")
    with pytest.raises(AuditError, match="missing column"):
        import_cash_counts(engine, missing, now=NOW, timezone=TZ)


MAPPING_JSON = """{
  "columns": {"time": "When", "terminal": "TID", "amount": "Gross", "fee": "Fee",
              "reference": "Ref", "original_reference": "Orig", "settlement_date": "Paid"},
  "format": {"decimal_places": 2, "timezone": "UTC"},
  "terminals": {"T1": "vm-1"}
}"""


def test_settlement_import_maps_columns_and_skips_rows_already_stored(
    engine: Engine, tmp_path: Path
) -> None:
    mapping_path = tmp_path / "m.json"
    mapping_path.write_text(MAPPING_JSON, encoding="utf-8")
    mapping = load_mapping(mapping_path)
    first = tmp_path / "week1.csv"
    first.write_text(
        "When,TID,Gross,Fee,Ref,Orig,Paid\n"
        "2026-03-05T10:00:00,T1,1.50,0.03,A1,,2026-03-06\n"
        "2026-03-07T10:00:00,T1,-1.50,0,A2,A1,2026-03-08\n",
        encoding="utf-8",
    )
    assert import_settlements(engine, first, mapping, now=NOW).imported == 2
    overlapping = tmp_path / "week1b.csv"
    overlapping.write_text(
        first.read_text(encoding="utf-8") + "2026-03-08T10:00:00,T9,2.00,0.04,A3,,2026-03-09\n",
        encoding="utf-8",
    )
    result = import_settlements(engine, overlapping, mapping, now=NOW)
    assert (result.imported, result.unchanged) == (1, 2)
    again = import_settlements(engine, overlapping, mapping, now=NOW)
    assert again.already_imported
    with engine.connect() as conn:
        rows = conn.execute(select(audit_settlements).order_by(audit_settlements.c.at)).all()
    assert [(r.machine_id, r.amount, r.fee, r.kind, r.original_reference) for r in rows] == [
        ("vm-1", 150, 3, "sale", None),
        ("vm-1", 150, 0, "refund", "A1"),
        ("T9", 200, 4, "sale", None),
    ]


def test_settlement_errors_name_file_line_and_column(tmp_path: Path) -> None:
    mapping = load_mapping(None, {"time": "When", "terminal": "TID", "amount": "Gross"})
    path = tmp_path / "s.csv"
    path.write_text(
        "When,TID,Gross\n2026-03-05T10:00:00,T1,12000\nyesterday,T1,1\n", encoding="utf-8"
    )
    with pytest.raises(AuditError, match=r"s\.csv:3: column 'When'"):
        parse_settlements(path, path.read_bytes(), mapping)
    path.write_text("Time,TID,Gross\n", encoding="utf-8")
    with pytest.raises(AuditError, match=r"s\.csv:1: the header has no column for time \('When'\)"):
        parse_settlements(path, path.read_bytes(), mapping)
    with pytest.raises(AuditError, match="no column for amount"):
        load_mapping(None, {"time": "When", "terminal": "TID"})
    with pytest.raises(AuditError, match="unknown field"):
        load_mapping(None, {"time": "a", "terminal": "b", "amount": "c", "colour": "d"})
    bad_toml = tmp_path / "m.toml"
    bad_toml.write_text("[columns\n", encoding="utf-8")
    with pytest.raises(AuditError, match="not valid TOML"):
        load_mapping(bad_toml)
