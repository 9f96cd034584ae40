"""Dialect-aware bulk writes: INSERT ... ON CONFLICT and many-row inserts/updates.

SQLite gets SQLAlchemy's executemany (cheap in-process calls). PostgreSQL gets one
statement per batch whose columns arrive as arrays (``unnest``): psycopg otherwise
pipelines one statement per row, or re-parses a huge multi-VALUES query every batch,
and on a 2-core machine that client-side CPU is what limits ingest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError


def insert_for(conn: Connection, table: Table) -> Any:
    """A dialect insert with ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _is_pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _unnest(conn: Connection, table: Table, columns: Sequence[str]) -> str:
    types = [table.c[name].type.compile(dialect=conn.dialect) for name in columns]
    return ", ".join(f"CAST(%(c{i})b AS {t}[])" for i, t in enumerate(types))


def _arrays(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, list[Any]]:
    return {f"c{i}": [row[name] for row in rows] for i, name in enumerate(columns)}


def _pg_execute(
    conn: Connection, sql: str, params: dict[str, list[Any]], *, fetch: bool
) -> list[tuple[Any, ...]]:
    """Run on the transaction's own psycopg connection with binary parameters (``%b``): text
    arrays cost more to escape than the rest of ingest together."""
    driver: Any = conn.connection.dbapi_connection
    dbapi_error: type[Exception] = conn.dialect.loaded_dbapi.Error
    try:
        with driver.cursor() as cursor:
            # Identifiers come from our table metadata, quoted; every value is a parameter.
            cursor.execute(sql, params)
            return [tuple(row) for row in cursor.fetchall()] if fetch else []
    except dbapi_error as exc:
        # Wrapped as SQLAlchemy wraps its own statements, so callers that retry or
        # quarantine on DBAPIError (serialization failure, deadlock, out-of-range value)
        # see these errors too.
        raise DBAPIError.instance(sql, params, exc, dbapi_error, hide_parameters=True) from exc


def bulk_insert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    skip_conflicts_on: Sequence[str] | None = None,
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (all with the same keys); with ``skip_conflicts_on`` a row that
    collides on those columns is skipped (an empty sequence: on any unique constraint).
    Returns the ``returning`` columns (as tuples) of the rows really inserted."""
    if not rows:
        return []
    columns = list(rows[0])
    if _is_pg(conn):
        quote = conn.dialect.identifier_preparer.quote
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608  (quoted metadata names; values bound)
            f"SELECT * FROM unnest({_unnest(conn, table, columns)})"
        )
        if skip_conflicts_on is not None:
            target = ", ".join(quote(c) for c in skip_conflicts_on)
            sql += f" ON CONFLICT ({target}) DO NOTHING" if target else " ON CONFLICT DO NOTHING"
        if returning:
            sql += f" RETURNING {', '.join(quote(c) for c in returning)}"
        return _pg_execute(conn, sql, _arrays(rows, columns), fetch=bool(returning))
    stmt = sqlite.insert(table)
    if skip_conflicts_on is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(skip_conflicts_on) or None)
    if returning:
        result = conn.execute(stmt.returning(*(table.c[c] for c in returning)), rows)
        return [tuple(row) for row in result]
    conn.execute(stmt, rows)
    return []


def bulk_update(
    conn: Connection, table: Table, key: str, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Update one row per mapping, found by ``key``; every mapping sets the same columns."""
    if not rows:
        return
    columns = list(rows[0])
    values = [c for c in columns if c != key]
    if _is_pg(conn):
        quote = conn.dialect.identifier_preparer.quote
        names = ", ".join(f"u{i}" for i in range(len(columns)))
        assignments = ", ".join(f"{quote(c)} = u.u{columns.index(c)}" for c in values)
        sql = (
            f"UPDATE {quote(table.name)} SET {assignments} "  # noqa: S608
            f"FROM unnest({_unnest(conn, table, columns)}) AS u({names}) "
            f"WHERE {quote(table.name)}.{quote(key)} = u.u{columns.index(key)}"
        )
        _pg_execute(conn, sql, _arrays(rows, columns), fetch=False)
        return
    stmt = (
        update(table)
        .where(table.c[key] == bindparam(f"k_{key}"))
        .values({c: bindparam(f"v_{c}") for c in values})
    )
    conn.execute(stmt, [{f"k_{key}": r[key], **{f"v_{c}": r[c] for c in values}} for r in rows])
