"""Migrations on empty SQLite and PostgreSQL databases; the schema matches the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import fleet.store.tables  # noqa: F401  (the full schema to compare against)
from fleet.store.db import StoreError, make_engine
from fleet.store.schema import current_revision, head_revision, require_migrated, upgrade


def test_upgrade_from_empty_is_idempotent_and_matches_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with pytest.raises(StoreError, match="vend fleet migrate"):
            require_migrated(engine)
        assert upgrade(engine) == (None, head_revision())
        assert upgrade(engine) == (head_revision(), head_revision())
        assert require_migrated(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert {"machines", "events", "gaps", "quarantine", "commands"} <= tables
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_bad_urls_are_named() -> None:
    with pytest.raises(StoreError, match="bad database URL"):
        make_engine("no url at all")
    with pytest.raises(StoreError, match="psycopg"):
        make_engine("postgresql+psycopg2://u@localhost/db")
    with pytest.raises(StoreError, match="only sqlite"):
        make_engine("mysql://u@localhost/db")


def test_unreachable_database_is_a_store_error(tmp_path: object) -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(StoreError, match="cannot reach"):
        current_revision(engine)
