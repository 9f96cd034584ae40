"""`vend fleet status | machines | machine | alarms | sales | events | price | planogram |
command` through the Typer runner, against a SQLite fleet database filled by the real
ingest path: JSON output checked against the ingested facts, exit codes for bad input,
and a price change that reaches a machine's subscription on a real Mosquitto, signed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from cli.fleet_common import (
    EXIT_BROKER_UNREACHABLE,
    EXIT_NOT_FOUND,
    EXIT_REFUSED,
    EXIT_USAGE,
)
from cli.main import app
from fleet.ingest import Ingestor
from fleet.store.db import make_engine
from fleet.store.models import commands
from fleet.store.schema import upgrade
from protocols.telemetry import (
    ChangePrice,
    ReplayGuard,
    command_filter,
    decode_command,
    verify,
)
from tests.fleet.conftest import KEY, message
from tests.fleet.test_queries import fleet_messages, sale_body
from tests.support.servers import Broker, free_port

runner = CliRunner()
KEY_TEXT = "hex:" + KEY.hex()
DEADLINE = 30.0


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in ("VEND_DB", "VEND_BROKER", "VEND_CONFIG", "VEND_FLEET_USER", "VEND_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))
    monkeypatch.setenv("VEND_TIMEZONE", "UTC")
    url = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    Ingestor(engine).ingest(fleet_messages())
    engine.dispose()
    return url


def vend(*args: str) -> Result:
    return runner.invoke(app, ["fleet", *args])


def ok_json(*args: str) -> Any:
    result = vend(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def failed(result: Result, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    flat = result.output.replace("\n", "")  # the console wraps long paths anywhere
    for word in words:
        assert word in flat


def stored_commands(db: str) -> list[Any]:
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(commands).order_by(commands.c.issued_at)))
    finally:
        engine.dispose()


# --- reading ---------------------------------------------------------------------------------


def test_status_json(db: str) -> None:
    status = ok_json("status", "--db", db)
    assert (status["machines"], status["online"], status["offline"]) == (2, 1, 1)
    assert (status["open_alarms"], status["critical_alarms"]) == (1, 1)
    assert (status["open_gaps"], status["missing_events"], status["quarantined"]) == (1, 2, 1)
    assert status["outbox_backlog"] == 3
    assert status["sales"] == []  # the ingested sales are from March 2026, not today


def test_status_table(db: str) -> None:
    result = vend("status", "--db", db)
    assert result.exit_code == 0, result.output
    assert "Fleet status" in result.output
    assert "1 / 1 / 0" in result.output


def test_machines_json_and_offline_filter(db: str) -> None:
    rows = ok_json("machines", "--db", db)
    assert [(m["id"], m["online"], m["empty"], m["below_par"]) for m in rows] == [
        ("vm-0001", True, 1, 2),
        ("vm-0002", False, 0, 0),
    ]
    assert [m["id"] for m in ok_json("machines", "--db", db, "--offline")] == ["vm-0002"]


def test_machine_show_json_and_table(db: str) -> None:
    detail = ok_json("machine", "show", "vm-0001", "--db", db, "--events", "2")
    assert detail["machine"]["firmware"] == "fw-1"
    assert [(s["selection"], s["count"], s["price"]) for s in detail["stock"]] == [
        ("A1", 0, 10000),
        ("A2", 3, 15000),
        ("A3", 8, 12000),
    ]
    assert detail["cash"]["tubes"] == [{"coin_type": 0, "value": 1000, "count": 20}]
    assert detail["cash"]["cash_sales_since_collection"] == 15000
    assert [a["code"] for a in detail["alarms"]] == ["jam"]
    assert [e["seq"] for e in detail["events"]] == [9, 10]
    table = vend("machine", "show", "vm-0001", "--db", db)
    assert table.exit_code == 0, table.output
    assert "Juice" in table.output
    assert "15,000 VND" in table.output


def test_machine_show_unknown_machine_exits_4(db: str) -> None:
    failed(vend("machine", "show", "vm-9999", "--db", db), EXIT_NOT_FOUND, "vm-9999")


def test_alarms_json_filters_and_bad_input(db: str) -> None:
    assert [a["code"] for a in ok_json("alarms", "--db", db)] == ["jam"]
    every = ok_json("alarms", "--db", db, "--all")
    assert [a["code"] for a in every] == ["tubes_low", "jam"]
    assert ok_json("alarms", "--db", db, "--all", "--severity", "warning")[0]["device"] == "changer"
    late = ok_json("alarms", "--db", db, "--all", "--since", "2026-03-01T09:00:09")
    assert [a["code"] for a in late] == ["tubes_low"]
    failed(vend("alarms", "--db", db, "--severity", "bogus"), EXIT_USAGE)
    failed(vend("alarms", "--db", db, "--since", "last tuesday"), EXIT_USAGE, "--since")
    failed(vend("alarms", "--db", db, "--machine", "vm-9999"), EXIT_NOT_FOUND, "vm-9999")


def test_sales_json_by_product_with_totals(db: str) -> None:
    period = ("--from", "2026-03-01T08:00", "--to", "2026-03-01T10:00")
    report = ok_json("sales", "--db", db, *period, "--by", "product")
    assert report["from"] == "2026-03-01T08:00:00Z"
    assert [(r["key"], r["count"], r["total"]) for r in report["rows"]] == [
        ("Coffee", 1, 150),
        ("Juice", 1, 15000),
        ("Tea", 1, 12000),
        ("Water", 2, 20000),
    ]
    assert report["totals"] == [
        {"currency": "EUR", "count": 1, "total": 150},
        {"currency": "VND", "count": 4, "total": 47000},
    ]
    hours = ok_json("sales", "--db", db, *period, "--by", "hour")
    assert [r["key"] for r in hours["rows"]] == [
        "2026-03-01T08:00:00Z",
        "2026-03-01T08:00:00Z",
        "2026-03-01T09:00:00Z",
    ]
    table = vend("sales", "--db", db, *period)
    assert table.exit_code == 0, table.output
    assert "47,000 VND" in table.output


def test_sales_display_time_zone_moves_the_period(db: str) -> None:
    # 15:00-17:00 in Saigon is 08:00-10:00 UTC.
    result = runner.invoke(
        app,
        [
            "fleet",
            "sales",
            "--db",
            db,
            "--from",
            "2026-03-01T15:00",
            "--to",
            "2026-03-01T17:00",
            "--json",
        ],
        env={"VEND_TIMEZONE": "Asia/Ho_Chi_Minh"},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"][1] == {"currency": "VND", "count": 4, "total": 47000}


def test_sales_bad_period_and_grouping(db: str) -> None:
    failed(vend("sales", "--db", db, "--from", "2026-03-02", "--to", "2026-03-01"), EXIT_USAGE)
    failed(vend("sales", "--db", db, "--by", "colour"), EXIT_USAGE)


def test_events_json(db: str) -> None:
    rows = ok_json("events", "--db", db, "--last", "3", "--machine", "vm-0001")
    assert [(e["machine_id"], e["seq"]) for e in rows] == [
        ("vm-0001", 8),
        ("vm-0001", 9),
        ("vm-0001", 10),
    ]
    assert rows[1]["summary"].startswith("raised tubes_low")


def test_database_problems_exit_1_without_creating_a_file(tmp_path: Path, db: str) -> None:
    missing = tmp_path / "missing.sqlite"
    failed(vend("status", "--db", f"sqlite:///{missing}"), 1, "no fleet database")
    assert not missing.exists()
    empty = tmp_path / "empty.sqlite"
    make_engine(f"sqlite:///{empty}").connect().close()
    failed(vend("machines", "--db", f"sqlite:///{empty}"), 1, "vend fleet migrate")
    failed(vend("status", "--db", "mysql://x@y/z"), 1, "only sqlite")


def test_settings_come_from_the_config_file_and_env(tmp_path: Path, db: str) -> None:
    config = tmp_path / "fleet.toml"
    config.write_text(f'[fleet]\ndb = "{db}"\n', encoding="utf-8")
    assert len(ok_json("machines", "--config", str(config))) == 2
    result = runner.invoke(app, ["fleet", "machines", "--json"], env={"VEND_CONFIG": str(config)})
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["fleet", "machines", "--json"], env={"VEND_DB": db})
    assert result.exit_code == 0, result.output
    config.write_text('[fleet]\ndatabase = "x"\n', encoding="utf-8")
    failed(vend("machines", "--config", str(config)), EXIT_USAGE, "database")
    failed(vend("machines", "--config", str(tmp_path / "nope.toml")), EXIT_USAGE, "nope.toml")


# --- changing --------------------------------------------------------------------------------


def register(db: str, machine: str = "vm-0001") -> None:
    result = vend("machine", "register", machine, "--key", KEY_TEXT, "--db", db)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["vm-0001", "A3", "12.5"], EXIT_USAGE, ["finer than VND"]),
        (["vm-0001", "A3", "12k"], EXIT_USAGE, ["not a number"]),
        (["vm-0001", "A3", "-5"], EXIT_USAGE, []),  # Click: no such option
        (["vm-0001", "A3", "0"], EXIT_USAGE, ["above zero"]),
        (["vm-0001", "A3", "12,000"], EXIT_USAGE, ["thousands"]),
        (["vm-0001", "A3", "1.50 EUR"], EXIT_USAGE, ["sells in VND"]),
        (["vm-0001", "Z9", "12000"], EXIT_NOT_FOUND, ["Z9", "A1, A2, A3"]),
        (["vm-9999", "A3", "12000"], EXIT_NOT_FOUND, ["vm-9999"]),
        (["vm-0002", "B1", "1.50"], EXIT_NOT_FOUND, ["--force"]),
        (["vm-0002", "B1", "1.50", "--force"], EXIT_REFUSED, ["no registered key"]),
    ],
)
def test_price_set_refuses_bad_input(db: str, args: list[str], code: int, words: list[str]) -> None:
    register(db)
    failed(vend("price", "set", *args, "--db", db, "--no-publish"), code, *words)
    assert stored_commands(db) == []


def test_price_set_no_publish_stores_a_signed_command(db: str) -> None:
    register(db)
    out = ok_json("price", "set", "vm-0001", "A3", "13000", "--db", db, "--no-publish")
    assert out["published"] is False
    (row,) = stored_commands(db)
    assert (row.id, row.name, row.published_at) == (out["command_id"], "price_change", None)
    command = decode_command("vend/v1/vm-0001/cmd/price_change", row.payload)
    assert isinstance(command, ChangePrice)
    assert (command.args.selection, command.args.price, command.args.currency) == (
        "A3",
        13000,
        "VND",
    )
    verdict = verify(
        command, key=KEY, machine_id="vm-0001", now=command.issued_at, guard=ReplayGuard()
    )
    assert verdict.ok, verdict.reason


def test_price_set_with_an_unreachable_broker_keeps_the_command_and_exits_3(db: str) -> None:
    register(db)
    broker = f"mqtt://fleet:secret@127.0.0.1:{free_port()}"
    result = vend("price", "set", "vm-0001", "A3", "13000", "--db", db, "--broker", broker)
    failed(result, EXIT_BROKER_UNREACHABLE, "stored", "vend fleet serve")
    assert "secret" not in result.output
    (row,) = stored_commands(db)
    assert row.published_at is None


@pytest.mark.broker
async def test_price_set_reaches_the_machine_signed(db: str, mosquitto: Broker) -> None:
    register(db)
    got: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()
    async with aiomqtt.Client(
        mosquitto.host, mosquitto.port, username="vm-0001", password=mosquitto.users["vm-0001"]
    ) as vm:
        await vm.subscribe(command_filter("vm-0001"), qos=1)

        async def collect() -> None:
            async for m in vm.messages:
                got.put_nowait(m)

        reader = asyncio.create_task(collect())
        result = await asyncio.to_thread(
            vend,
            "price",
            "set",
            "vm-0001",
            "A2",
            "16000",
            "--db",
            db,
            "--broker",
            mosquitto.url("fleet"),
            "--json",
        )
        assert result.exit_code == 0, result.output
        received = await asyncio.wait_for(got.get(), DEADLINE)
        reader.cancel()
    assert str(received.topic) == "vend/v1/vm-0001/cmd/price_change"
    command = decode_command(str(received.topic), bytes(received.payload))
    assert isinstance(command, ChangePrice)
    assert command.id == json.loads(result.stdout)["command_id"]
    assert (command.args.selection, command.args.price) == ("A2", 16000)
    verdict = verify(
        command, key=KEY, machine_id="vm-0001", now=command.issued_at, guard=ReplayGuard()
    )
    assert verdict.ok, verdict.reason
    (row,) = stored_commands(db)
    assert row.published_at is not None


PLANOGRAM = """\
config_version = "2026-03-b"

[machine]
id = "vm-0001"
currency = "VND"

[[selection]]
code = "A1"
product = "Nước suối"
price = 8000
capacity = 12
par = 8
motor = 1

[[selection]]
code = "A2"
product = "Trà xanh"
price = 12000
capacity = 10
par = 6
motor = 2
"""


def test_planogram_push_stores_the_whole_planogram(tmp_path: Path, db: str) -> None:
    register(db)
    file = tmp_path / "planogram.toml"
    file.write_text(PLANOGRAM, encoding="utf-8")
    out = ok_json("planogram", "push", "vm-0001", str(file), "--db", db, "--no-publish")
    (row,) = stored_commands(db)
    assert (row.id, row.name) == (out["command_id"], "planogram_change")
    args = json.loads(row.args)
    assert (args["config_version"], args["effective"], args["currency"]) == (
        "2026-03-b",
        "next_service",
        "VND",
    )
    assert [
        (s["code"], s["product"], s["price"], s["item_number"]) for s in args["selections"]
    ] == [
        ("A1", "Nước suối", 8000, 1),
        ("A2", "Trà xanh", 12000, 2),
    ]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("price = 8000", "price = 8000.5"), ["selection[0].price"]),
        (('code = "A2"', 'code = "A1"'), ["selection codes repeat: A1"]),
        (("motor = 2", "motor = 1"), ["motors repeat: 1"]),
        (("par = 6", "par = 60"), ["selection[1]", "above capacity"]),
        (('currency = "VND"', 'currency = "EUR"'), ["VND"]),
        (("[[selection]]", "[[selection]"), ["not valid TOML"]),
        (("motor = 1\n", "motor = 1\ncolour = 'red'\n"), ["selection[0].colour"]),
    ],
)
def test_planogram_push_names_what_is_wrong(
    tmp_path: Path, db: str, change: tuple[str, str], words: list[str]
) -> None:
    register(db)
    file = tmp_path / "planogram.toml"
    file.write_text(PLANOGRAM.replace(*change, 1), encoding="utf-8")
    failed(
        vend("planogram", "push", "vm-0001", str(file), "--db", db, "--no-publish"),
        EXIT_USAGE,
        *words,
    )
    assert stored_commands(db) == []


def test_planogram_push_of_a_missing_file_exits_2(tmp_path: Path, db: str) -> None:
    failed(
        vend("planogram", "push", "vm-0001", str(tmp_path / "none.toml"), "--db", db),
        EXIT_USAGE,
        "none.toml",
    )


def test_command_by_name_with_typed_arguments(db: str) -> None:
    register(db)
    out = ok_json(
        "command",
        "vm-0001",
        "selection_service",
        "selection=B1",
        "in_service=false",
        "reason=recall",
        "--db",
        db,
        "--no-publish",
    )
    (row,) = stored_commands(db)
    assert row.id == out["command_id"]
    assert json.loads(row.args) == {"selection": "B1", "in_service": False, "reason": "recall"}


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["vm-0001", "self_destruct"], EXIT_USAGE, ["self_destruct"]),
        (["vm-0001", "request_dex", "nope=1"], EXIT_USAGE, ["nope", "reset"]),
        (["vm-0001", "request_dex", "reset=maybe"], EXIT_USAGE, ["true or false"]),
        (["vm-0001", "resync", "after_seq=x"], EXIT_USAGE, ["whole number"]),
        (["vm-0001", "resync"], EXIT_USAGE, ["after_seq"]),
        (["vm-0001", "reboot", "now"], EXIT_USAGE, ["key=value"]),
        (["vm-9999", "reboot"], EXIT_NOT_FOUND, ["vm-9999"]),
    ],
)
def test_command_refuses_bad_input(db: str, args: list[str], code: int, words: list[str]) -> None:
    register(db)
    failed(vend("command", *args, "--db", db, "--no-publish"), code, *words)


def test_register_refuses_a_short_key(db: str) -> None:
    failed(
        vend("machine", "register", "vm-0001", "--key", "hex:0011", "--db", db),
        EXIT_USAGE,
        "16 bytes",
    )
    failed(vend("machine", "register", "vm/1", "--key", KEY_TEXT, "--db", db), EXIT_USAGE, "vm/1")


# --- following, help, completion ----------------------------------------------------------


def test_events_follow_prints_events_stored_after_it_started(tmp_path: Path, db: str) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "VEND_TIMEZONE": "UTC"}
    args = [sys.executable, "-m", "cli.main", "fleet", "events", "--db", db]
    args += ["--follow", "--json", "--last", "0", "--max", "2", "--interval", "0.1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stderr is not None
        started = proc.stderr.readline().decode()
        assert "following events after" in started, started
        engine = make_engine(db)
        Ingestor(engine).ingest(
            [message(sale_body("B1", "Coffee", 150, "EUR", "cash"), 3, "vm-0002")]
        )
        Ingestor(engine).ingest(
            [message(sale_body("A3", "Tea", 12000, "VND", "cash"), 11, "vm-0001")]
        )
        engine.dispose()
        stdout, _ = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    lines = [json.loads(line) for line in stdout.decode().splitlines()]
    assert [(e["machine_id"], e["seq"], e["summary"]) for e in lines] == [
        ("vm-0002", 3, "B1 Coffee 1.50 EUR cash"),
        ("vm-0001", 11, "A3 Tea 12,000 VND cash"),
    ]


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["machines"],
        ["machine", "show"],
        ["alarms"],
        ["sales"],
        ["events"],
        ["price", "set"],
        ["planogram", "push"],
        ["command"],
        ["machine", "register"],
    ],
)
def test_every_command_has_help_with_examples(command: list[str]) -> None:
    result = vend(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.output
    assert "vend fleet " + " ".join(command) in result.output


def test_bash_completion_script() -> None:
    # From a real bash: the completion option detects the shell from its parent process.
    vend_bin = Path(sys.executable).with_name("vend")
    done = subprocess.run(
        ["bash", "-c", f"'{vend_bin}' --show-completion; exit $?"],  # no exec: bash stays
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "complete" in done.stdout
    assert "_VEND_COMPLETE" in done.stdout.upper()
