from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app

DATA = Path(__file__).resolve().parent.parent / "protocols" / "dex" / "data"
runner = CliRunner()


def test_parse_json_has_exactly_the_documented_shape_and_values() -> None:
    result = runner.invoke(app, ["dex", "parse", str(DATA / "coffee_lf.dex"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert list(out)[:5] == ["machine_serial", "crc", "totals", "selections", "warnings"]
    assert out["machine_serial"] == "RHV0000004711"
    assert out["crc"] == "ok"
    assert out["totals"] == {
        "paid_vends_value": 20750,
        "paid_vends_count": 310,
        "cash_sales_value": 12300,
        "cashless_sales_value": 8450,
    }
    assert out["selections"] == [
        {"selection": "1", "price": 50, "vends": 102, "sales_value": 5100},
        {"selection": "2", "price": 70, "vends": 150, "sales_value": 10500},
        {"selection": "3", "price": 60, "vends": 58, "sales_value": 3480},
        {"selection": "4", "price": 0, "vends": 0, "sales_value": 0},
    ]
    assert out["warnings"] == []


def test_parse_json_reports_mismatch_nulls_and_warnings() -> None:
    result = runner.invoke(
        app, ["dex", "parse", str(DATA / "jofemar_sentinels_bad_crc.dex"), "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["crc"] == "mismatch"
    assert out["selections"][2] == {
        "selection": "13",
        "price": 0,
        "vends": None,
        "sales_value": None,
    }
    assert any("G85 CRC mismatch" in w for w in out["warnings"])


def test_parse_missing_totals_are_null() -> None:
    result = runner.invoke(app, ["dex", "parse", str(DATA / "truncated.dex"), "--json"])
    out = json.loads(result.stdout)
    assert out["crc"] == "absent"
    assert out["totals"]["cash_sales_value"] is None
    assert out["totals"]["cashless_sales_value"] is None


def test_parse_reads_stdin() -> None:
    data = (DATA / "nw_wrapped.daa").read_bytes()
    result = runner.invoke(app, ["dex", "parse", "-", "--json"], input=data)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["machine_serial"] == "NEC01190311"


def test_parse_table_summary() -> None:
    result = runner.invoke(app, ["dex", "parse", str(DATA / "itl_wrong_se.dex")])
    assert result.exit_code == 0, result.output
    assert "69250" in result.stdout
    assert "SE declares 18 segments" in result.stdout


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.dex"
    result = runner.invoke(app, ["dex", "parse", str(missing), "--json"])
    assert result.exit_code == 1
    assert str(missing) in result.stderr
    assert "cannot read" in result.stderr
    assert result.stdout == ""


def test_not_dex_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "photo.jpg"
    junk.write_bytes(bytes(range(256)) * 8)
    result = runner.invoke(app, ["dex", "parse", str(junk)])
    assert result.exit_code == 1
    assert "photo.jpg" in result.stderr
    assert "not DEX" in result.stderr


def test_empty_stdin_is_a_clear_error() -> None:
    result = runner.invoke(app, ["dex", "parse", "-"], input=b"")
    assert result.exit_code == 1
    assert "standard input" in result.stderr
    assert "empty" in result.stderr


def test_usage_error_exits_2() -> None:
    result = runner.invoke(app, ["dex", "parse"])
    assert result.exit_code == 2
