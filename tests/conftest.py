"""Shared fixtures: real Mosquitto and PostgreSQL servers, started once per test session."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import Broker, Postgres, run_mosquitto, run_postgres


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[Broker]:
    users = {"fleet": "fleet-secret", **{f"vm-{n:04d}": f"pw-{n:04d}" for n in range(1, 11)}}
    with _server_folder("mosquitto") as folder, run_mosquitto(folder, users) as broker:
        yield broker


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    with _server_folder("postgres") as folder, run_postgres(folder) as server:
        yield server


@contextlib.contextmanager
def _server_folder(name: str) -> Iterator[Path]:
    # Not under pytest's tmp_path: that is private to root, and the servers drop to their
    # own users (mosquitto, postgres) who must reach their files.
    folder = Path(tempfile.mkdtemp(prefix=f"vendfleet-{name}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
