"""Engines: SQLite readers that run side by side (the reconciliation's worker processes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from fleet.store.db import make_engine


def _made(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1), (2)"))
    engine.dispose()
    return url


def test_read_only_engines_read_in_open_transactions_side_by_side(tmp_path: Path) -> None:
    url = _made(tmp_path / "f.sqlite")
    first, second = make_engine(url, read_only=True), make_engine(url, read_only=True)
    try:
        with first.connect() as a, second.connect() as b:
            # Both transactions stay open at once: write-locking BEGINs would queue here.
            assert a.execute(text("SELECT sum(v) FROM t")).scalar_one() == 3
            assert b.execute(text("SELECT count(*) FROM t")).scalar_one() == 2
            assert a.in_transaction()
            assert b.in_transaction()
    finally:
        first.dispose()
        second.dispose()


def test_a_read_only_engine_refuses_writes(tmp_path: Path) -> None:
    url = _made(tmp_path / "f.sqlite")
    engine = make_engine(url, read_only=True)
    try:
        with engine.connect() as conn, pytest.raises(OperationalError, match="readonly"):
            conn.execute(text("INSERT INTO t VALUES (3)"))
    finally:
        engine.dispose()
    writer = make_engine(url)
    with writer.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 2
    writer.dispose()
