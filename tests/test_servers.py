"""The test servers really start and really enforce what we configure."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from tests.support.servers import Broker, Postgres


@pytest.mark.broker
def test_mosquitto_pins_each_machine_to_its_own_topics(mosquitto: Broker) -> None:
    def pub(user: str, topic: str) -> int:
        return subprocess.run(
            ["mosquitto_pub", "-h", mosquitto.host, "-p", str(mosquitto.port), "-u", user,
             "-P", mosquitto.users[user], "-t", topic, "-m", "x", "-q", "1", "-V", "mqttv5"],
            capture_output=True, timeout=10, check=False,
        ).returncode  # fmt: skip

    assert pub("vm-0001", "vend/v1/vm-0001/sale") == 0
    wrong_password = subprocess.run(
        ["mosquitto_pub", "-h", mosquitto.host, "-p", str(mosquitto.port), "-u", "vm-0001",
         "-P", "wrong", "-t", "vend/v1/vm-0001/sale", "-m", "x"],
        capture_output=True, timeout=10, check=False,
    )  # fmt: skip
    assert wrong_password.returncode != 0


@pytest.mark.postgres
def test_postgres_accepts_connections(postgres: Postgres) -> None:
    url = postgres.create_database("smoke")
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        assert conn.execute("SELECT 40 + 2").fetchone() == (42,)
