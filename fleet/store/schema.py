"""Schema migrations, run from the installed package (no alembic.ini, any cwd)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from fleet.store.db import StoreError

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The revision this build needs; features may add their tables on separate branches,
    so it is every head, sorted and comma-joined."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert heads
    return ",".join(sorted(heads))


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
            return ",".join(sorted(heads)) if heads else None
    except OperationalError as exc:
        raise StoreError(f"cannot reach the database {_safe(engine)}: {exc.orig}") from None


def upgrade(engine: Engine, revision: str = "heads") -> tuple[str | None, str]:
    """Bring the schema to ``revision``; returns (before, after). Idempotent."""
    before = current_revision(engine)
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    after = current_revision(engine)
    assert after is not None
    return before, after


def require_migrated(engine: Engine) -> str:
    """The schema revision, or a StoreError that says to run ``vend fleet migrate``."""
    current, head = current_revision(engine), head_revision()
    if current is None:
        raise StoreError(
            f"database {_safe(engine)} has no fleet schema yet: run `vend fleet migrate --db ...` "
            "(or pass --migrate)"
        )
    if current != head:
        raise StoreError(
            f"database {_safe(engine)} is at schema {current}, this build needs {head}: "
            "run `vend fleet migrate --db ...` (or pass --migrate)"
        )
    return current


def _safe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
