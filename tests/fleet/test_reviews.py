"""The human review queue: ``review`` messages through the real ingest path into
``review_queue`` (SQLite and PostgreSQL), read back, and resolved once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from fleet import reviews
from fleet.ingest import Ingestor
from fleet.store.models import events
from fleet.store.review_models import review_queue
from protocols.telemetry import ReviewBody
from tests.fleet.conftest import body, message, sale

NOW = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


def review_body(session_id: int, **changes: object) -> ReviewBody:
    base = body("review")
    assert isinstance(base, ReviewBody)
    return base.model_copy(update={"session_id": session_id, **changes})


def ingest(engine: Engine, *batch: object) -> None:
    report = Ingestor(engine, clock=lambda: NOW).ingest(list(batch))  # type: ignore[arg-type]
    assert report.quarantined == 0


def test_a_review_message_opens_one_queue_row_with_its_evidence(engine: Engine) -> None:
    sent = review_body(77, reasons=["door held open"], rule="hold_for_review", charged=0)
    ingest(engine, sale(1), message(sent, 2), message(sent, 2))  # the duplicate is a no-op
    with engine.connect() as conn:
        rows = conn.execute(select(review_queue)).all()
        assert len(rows) == 1
        row = rows[0]
        assert (row.machine_id, row.seq, row.session_id) == ("vm-0001", 2, 77)
        assert (row.rule, row.state, row.charged, row.authorised) == (
            "hold_for_review",
            "open",
            0,
            sent.authorised,
        )
        assert json.loads(row.reasons) == ["door held open"]
        stored = json.loads(row.body)
        assert stored["evidence"][1]["weight_after_g"] == sent.evidence[1].weight_after_g
        assert conn.execute(select(events.c.schema)).scalars().all() == ["vend.sale", "vend.review"]
        found = reviews.list_reviews(conn, open_only=True)
    assert [(r.session_id, r.detail["plausible_lines"][1]["selection"]) for r in found] == [
        (77, "WATER")
    ]


def test_list_is_oldest_first_and_filters(engine: Engine) -> None:
    ingest(
        engine,
        message(review_body(5), 3, "vm-0002"),
        message(review_body(6), 1),
        message(review_body(7), 2),
    )
    with engine.begin() as conn:
        first = reviews.list_reviews(conn)
        assert [(r.machine_id, r.session_id) for r in first] == [
            ("vm-0001", 6),
            ("vm-0001", 7),
            ("vm-0002", 5),
        ]
        reviews.resolve(conn, first[0].id, charge=None, by="lan", why="nothing taken", now=NOW)
    with engine.connect() as conn:
        assert [r.session_id for r in reviews.list_reviews(conn, open_only=True)] == [7, 5]
        assert [r.session_id for r in reviews.list_reviews(conn, machine_id="vm-0002")] == [5]


def test_resolve_records_who_when_why_once(engine: Engine) -> None:
    ingest(engine, message(review_body(9, authorised=200000), 1))
    with engine.connect() as conn:
        (open_review,) = reviews.list_reviews(conn)
    later = NOW + timedelta(hours=1)
    with engine.begin() as conn:
        done = reviews.resolve(
            conn, open_review.id, charge=23000, by="lan", why="video shows two items", now=later
        )
    assert (done.state, done.resolution, done.resolved_amount) == ("resolved", "charge", 23000)
    with engine.connect() as conn:
        row = conn.execute(select(review_queue)).one()
    assert (row.resolved_by, row.resolved_why) == ("lan", "video shows two items")
    assert row.resolved_at.replace(tzinfo=UTC) == later
    with (
        engine.begin() as conn,
        pytest.raises(reviews.ReviewError, match="already resolved by lan"),
    ):
        reviews.resolve(conn, open_review.id, charge=None, by="minh", why="again", now=later)


@pytest.mark.parametrize(
    ("charge", "by", "why", "problem"),
    [
        (200001, "lan", "too much", "must be 0..200000 VND"),
        (-1, "lan", "negative", "must be 0..200000"),
        (100, " ", "nobody", "--by must name"),
        (100, "lan", "  ", "--why must say why"),
    ],
)
def test_bad_resolutions_are_refused_by_name(
    engine: Engine, charge: int, by: str, why: str, problem: str
) -> None:
    ingest(engine, message(review_body(9, authorised=200000), 1))
    with engine.begin() as conn:
        (r,) = reviews.list_reviews(conn)
        with pytest.raises(reviews.ReviewError, match=problem):
            reviews.resolve(conn, r.id, charge=charge, by=by, why=why, now=NOW)
        assert reviews.review(conn, r.id).state == "open"


def test_an_unknown_review_is_not_found(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(reviews.ReviewNotFoundError, match="no review 4"):
        reviews.resolve(conn, 4, charge=None, by="lan", why="x", now=NOW)
