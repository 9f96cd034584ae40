"""`vend fleet migrate` and the refusals of `vend fleet serve` (exit codes, messages)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.fleet import EXIT_BROKER_UNREACHABLE, app
from fleet.store.schema import head_revision
from tests.support.servers import free_port

runner = CliRunner()


def test_migrate_creates_then_reports_the_schema(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    first = runner.invoke(app, ["migrate", "--db", db])
    assert first.exit_code == 0, first.output
    assert f"upgraded from empty to {head_revision()}" in first.output
    again = runner.invoke(app, ["migrate", "--db", db])
    assert again.exit_code == 0
    assert f"already at {head_revision()}" in again.output


def test_migrate_reads_vend_db_and_defaults_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    assert (tmp_path / "fleet.sqlite").exists()
    other = tmp_path / "other.sqlite"
    result = runner.invoke(app, ["migrate"], env={"VEND_DB": f"sqlite:///{other}"})
    assert result.exit_code == 0
    assert other.exists()


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    result = runner.invoke(app, ["serve", "--db", db, "--broker", "mqtt://127.0.0.1:1"])
    assert result.exit_code == 1
    assert "vend fleet migrate" in result.output


def test_serve_exits_3_when_the_broker_is_unreachable(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    url = f"mqtt://fleet:pw@127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["serve", "--db", db, "--migrate", "--broker", url])
    assert result.exit_code == EXIT_BROKER_UNREACHABLE, result.output
    assert "cannot reach the broker" in result.output
    assert "pw" not in result.output  # the password is never printed


@pytest.mark.parametrize(
    ("url", "problem"),
    [("http://host", "expected mqtt://"), ("mqtt://", "no host"), ("mqtt://h:99999", "bad")],
)
def test_serve_names_a_bad_broker_url(tmp_path: Path, url: str, problem: str) -> None:
    db = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    result = runner.invoke(app, ["serve", "--db", db, "--broker", url])
    assert result.exit_code == 1
    assert problem in result.output


def test_serve_names_a_bad_database_url() -> None:
    result = runner.invoke(app, ["serve", "--db", "mysql://x@y/z"])
    assert result.exit_code == 1
    assert "only sqlite" in result.output
