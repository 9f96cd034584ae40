"""Fleet fixtures: a migrated database on SQLite and on PostgreSQL, and message builders."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from fleet.ingest import Received
from fleet.store.db import make_engine
from fleet.store.schema import upgrade
from protocols.telemetry import Body, Kind, encode, kind_of, make_envelope, topic_for
from protocols.telemetry.examples import example_bodies
from tests.support.servers import Postgres

T0 = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
KEY = b"fleet-test-key-0001-0123456789ab"
_names = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    server: Postgres = request.getfixturevalue("postgres")
    return server.create_database(f"fleet_{next(_names)}")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def body(kind: str) -> Body:
    return example_bodies()[Kind(kind)]


def message(
    body: Body,
    seq: int,
    machine: str = "vm-0001",
    *,
    boot: int = 1,
    at: datetime = T0,
) -> Received:
    env = make_envelope(
        body, machine_id=machine, boot_id=boot, seq=seq, ts=at + timedelta(seconds=seq)
    )
    return Received(topic_for(machine, kind_of(body)), encode(env), at + timedelta(seconds=seq))


def sale(seq: int, machine: str = "vm-0001", **changes: object) -> Received:
    base = body("sale").model_copy(update={"vend_id": seq, **changes})
    return message(base, seq, machine)
