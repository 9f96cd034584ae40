"""`vend fleet reviews` and `vend fleet review show | resolve` through the Typer runner,
against a SQLite fleet database filled by the real ingest path: JSON checked against the
ingested messages, the decision read back from the table, exit codes for bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from cli.fleet_common import EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_USAGE
from cli.main import app
from fleet.ingest import Ingestor
from fleet.store.db import make_engine
from fleet.store.review_models import review_queue
from fleet.store.schema import upgrade
from protocols.telemetry import ReviewBody
from protocols.telemetry.examples import example_bodies
from protocols.telemetry.topics import Kind
from tests.fleet.conftest import message

runner = CliRunner()


def _review(session_id: int, **changes: object) -> ReviewBody:
    base = example_bodies()[Kind.REVIEW]
    assert isinstance(base, ReviewBody)
    return base.model_copy(update={"session_id": session_id, **changes})


SENT = [
    _review(41, rule="hold_for_review", outcome="held_for_review", charged=0),
    _review(42, outcome="unsettled", rule="payment", reasons=["the card authorisation was lost"]),
]


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in ("VEND_DB", "VEND_CONFIG", "VEND_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    monkeypatch.setenv("VEND_TIMEZONE", "UTC")
    url = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    batch = [message(body, seq) for seq, body in enumerate(SENT, start=1)]
    Ingestor(engine, clock=lambda: now).ingest(batch)
    engine.dispose()
    monkeypatch.setenv("VEND_DB", url)
    return url


def vend(*args: str) -> Result:
    return runner.invoke(app, ["fleet", *args])


def ok_json(*args: str) -> Any:
    result = vend(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def stored(db: str) -> list[Any]:
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(review_queue).order_by(review_queue.c.id)).all())
    finally:
        engine.dispose()


def test_reviews_lists_what_the_machines_sent(db: str) -> None:
    listed = ok_json("reviews", "--open")
    assert [(r["session_id"], r["outcome"], r["charged"]) for r in listed] == [
        (s.session_id, s.outcome, s.charged) for s in SENT
    ]
    assert listed[1]["reasons"] == ["the card authorisation was lost"]
    table = vend("reviews")
    assert table.exit_code == 0
    assert "Reviews (2)" in table.stdout


def test_show_has_the_sensor_evidence(db: str) -> None:
    first = stored(db)[0]
    shown = ok_json("review", "show", str(first.id))
    assert shown["detail"]["evidence"] == [e.model_dump() for e in SENT[0].evidence]
    text = vend("review", "show", str(first.id))
    assert text.exit_code == 0
    assert "Sensor evidence" in text.stdout


def test_resolve_charge_then_release_records_the_decisions(db: str) -> None:
    first, second = stored(db)
    out = ok_json("review", "resolve", str(first.id), "--charge", "15000", "--by", "lan",
                  "--why", "video: one can")  # fmt: skip
    assert (out["resolution"], out["resolved_amount"]) == ("charge", 15000)
    vend_result = vend("review", "resolve", str(second.id), "--release", "--by", "minh",
                       "--why", "nothing missing at the count")  # fmt: skip
    assert vend_result.exit_code == 0, vend_result.output
    rows = stored(db)
    assert [(r.state, r.resolution, r.resolved_amount, r.resolved_by) for r in rows] == [
        ("resolved", "charge", 15000, "lan"),
        ("resolved", "release", None, "minh"),
    ]
    assert rows[1].resolved_why == "nothing missing at the count"
    assert ok_json("reviews", "--open") == []
    again = vend("review", "resolve", str(first.id), "--release", "--by", "x", "--why", "y")
    assert again.exit_code == EXIT_REFUSED
    assert "already resolved" in again.output


@pytest.mark.parametrize(
    ("args", "code", "problem"),
    [
        (["--by", "lan", "--why", "x"], EXIT_USAGE, "exactly one of"),
        (["--release", "--charge", "5", "--by", "lan", "--why", "x"], EXIT_USAGE, "exactly one"),
        (["--charge", "999999999", "--by", "lan", "--why", "x"], EXIT_REFUSED, "authorised"),
    ],
)
def test_bad_resolutions_exit_with_their_code(
    db: str, args: list[str], code: int, problem: str
) -> None:
    first = stored(db)[0]
    result = vend("review", "resolve", str(first.id), *args)
    assert result.exit_code == code, result.output
    assert problem in result.output
    assert stored(db)[0].state == "open"


def test_an_unknown_review_exits_not_found(db: str) -> None:
    result = vend("review", "resolve", "999", "--release", "--by", "lan", "--why", "x")
    assert result.exit_code == EXIT_NOT_FOUND
    assert "no review 999" in result.output
