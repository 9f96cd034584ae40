"""`vend audit receipts`: listing the e-receipt queue and retrying a rejected receipt."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from cli.main import app
from cli.receipts import EXIT_ERROR
from fleet.einvoice import (
    QueueState,
    ReceiptKind,
    claim,
    enqueue,
    list_receipts,
    record_accepted,
    record_failure,
    replace_receipt,
)
from fleet.store.db import make_engine
from fleet.store.schema import upgrade
from tests.fleet.einvoice.support import T0, key, outgoing

runner = CliRunner(env={"COLUMNS": "200"})
RECEIPTS = ("audit", "receipts")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        for n in (1, 2, 3):
            enqueue(conn, outgoing(n), T0)
        accepted, rejected = claim(conn, T0, 2)
        record_accepted(conn, accepted, provider="fake", ref="PRV-000001", now=T0)
        record_failure(
            conn,
            rejected,
            provider="fake",
            reason="422: MST unknown",
            permanent=True,
            now=T0,
            rng=random.Random(1),
        )
        replace_receipt(
            conn, key(1), outgoing(4, kind=ReceiptKind.REPLACEMENT, original=key(1)), T0
        )
    yield url, engine
    engine.dispose()


def test_lists_every_receipt_with_state_reference_and_link(db: tuple[str, Engine]) -> None:
    url, _ = db
    result = runner.invoke(app, [*RECEIPTS, "--db", url])
    assert result.exit_code == 0, result.output
    assert "vm-0001/1C26MAA/1" in result.output
    assert "PRV-000001" in result.output
    assert "422: MST unknown" in result.output
    assert "replaced by vm-0001/1C26MAA/4" in result.output
    assert "pending 2, sending 0, accepted 1, rejected 1, failed 0" in result.output


def test_json_lines_filtered_by_state(db: tuple[str, Engine]) -> None:
    url, _ = db
    result = runner.invoke(app, [*RECEIPTS, "--db", url, "--state", "pending", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["key"], r["kind"], r["original"]) for r in rows] == [
        ("vm-0001/1C26MAA/3", "original", None),
        ("vm-0001/1C26MAA/4", "replacement", "vm-0001/1C26MAA/1"),
    ]


def test_retry_puts_a_rejected_receipt_back_in_the_queue(db: tuple[str, Engine]) -> None:
    url, engine = db
    result = runner.invoke(app, [*RECEIPTS, "retry", "vm-0001/1C26MAA/2", "--db", url])
    assert result.exit_code == 0, result.output
    assert "queued again: pending" in result.output
    with engine.connect() as conn:
        states = {r.key: (r.state, r.attempts) for r in list_receipts(conn)}
    assert states[key(2)] == (QueueState.PENDING, 0)


def test_retry_by_idempotency_key(db: tuple[str, Engine]) -> None:
    url, _ = db
    result = runner.invoke(app, [*RECEIPTS, "retry", outgoing(2).idempotency_key, "--db", url])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("key_text", "message"),
    [
        ("vm-0001/1C26MAA/1", "only rejected or failed"),
        ("vm-0001/1C26MAA/99", "no receipt vm-0001/1C26MAA/99"),
        ("rcpt-unknown", "no receipt rcpt-unknown"),
        ("not a key", "machine/series/number"),
    ],
)
def test_retry_refusals_are_named(db: tuple[str, Engine], key_text: str, message: str) -> None:
    url, _ = db
    result = runner.invoke(app, [*RECEIPTS, "retry", key_text, "--db", url])
    assert result.exit_code == EXIT_ERROR
    assert message in result.output


def test_an_unmigrated_database_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, [*RECEIPTS, "--db", f"sqlite:///{tmp_path / 'empty.sqlite'}"])
    assert result.exit_code == EXIT_ERROR
    assert "vend fleet migrate" in result.output


def test_a_bad_state_is_a_usage_error(db: tuple[str, Engine]) -> None:
    url, _ = db
    result = runner.invoke(app, [*RECEIPTS, "--db", url, "--state", "lost"])
    assert result.exit_code == 2
