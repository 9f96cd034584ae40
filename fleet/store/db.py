"""Engines for the fleet database: a SQLite file (WAL) by default, PostgreSQL at scale.

SQLite transactions start with ``BEGIN IMMEDIATE`` so two ingest processes on one file
queue on the write lock (``busy_timeout``) instead of failing when a read transaction
tries to become a write transaction. PostgreSQL serialises per machine with row locks
(see :mod:`fleet.ingest`). A ``read_only`` engine (the reconciliation's worker processes)
begins plain deferred transactions on SQLite instead: readers never take the write lock,
so several of them read side by side in WAL mode, each from its own snapshot.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import ConnectionPoolEntry

DEFAULT_DB_URL = "sqlite:///fleet.sqlite"
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000")


class StoreError(Exception):
    """The database cannot be used: bad URL, unreachable, or not migrated."""


def make_engine(url: str, *, read_only: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``url``: ``sqlite:///path`` or ``postgresql+psycopg://...``;
    ``read_only``: SQLite refuses writes and takes no write lock."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"bad database URL {url!r}: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.get_driver_name() != "psycopg":
        raise StoreError(
            f"database URL {url!r}: use postgresql+psycopg:// (psycopg 3 is the driver we ship)"
        )
    if backend not in {"sqlite", "postgresql"}:
        raise StoreError(f"database URL {url!r}: only sqlite:/// and postgresql+psycopg:// work")
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreError(f"bad database URL {url!r}: {exc}") from None
    if backend == "sqlite":
        _sqlite_setup(engine, read_only=read_only)
    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_setup(engine: Engine, *, read_only: bool) -> None:
    pragmas = (*SQLITE_PRAGMAS, "query_only=ON") if read_only else SQLITE_PRAGMAS
    begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        # Own transaction control: pysqlite's implicit BEGIN would be DEFERRED.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)
