"""Whole machine + real Mosquitto: telemetry out, store-and-forward, status/will, commands.

Each test uses its own machine id, so retained status and persistent sessions of one test
never reach another.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.commands import REBOOT_EXIT_CODE
from protocols.telemetry import (
    AckOutcome,
    ChangePlanogram,
    ChangePrice,
    Effective,
    Kind,
    MachineServiceArgs,
    PlanogramChangeArgs,
    PlanogramEntry,
    PriceChangeArgs,
    Reboot,
    RebootArgs,
    RequestDex,
    RequestDexArgs,
    Resync,
    ResyncArgs,
    SelectionServiceArgs,
    SetMachineService,
    SetSelectionService,
    StockKind,
)
from tests.e2e.fleet_listener import FleetListener, command_times
from tests.e2e.rig import SELECTIONS, MachineRig, machine_rig
from tests.support.servers import Broker, free_port, run_mosquitto

pytestmark = [pytest.mark.e2e, pytest.mark.pty, pytest.mark.broker]

KEY = bytes(range(32))
COIN_5000 = 4


def _telemetry(broker: Broker | str, machine_id: str, password: str = "") -> dict[str, Any]:
    url = broker if isinstance(broker, str) else broker.url()
    if not isinstance(broker, str):
        password = broker.users[machine_id]
    return {
        "broker": url,
        "password": password,
        "command_key": "hex:" + KEY.hex(),
        "max_backoff": 1.0,
    }


@contextlib.contextmanager
def listening(
    broker: Broker, machine_id: str, session: str | None = None
) -> Iterator[FleetListener]:
    listener = FleetListener(broker, machine_id, session=session)
    try:
        yield listener
    finally:
        listener.close()


def _seqs(listener: FleetListener) -> list[int]:
    return [e.seq for e in listener.events()]


def _card_sale(rig: MachineRig, code: str, charged: int) -> None:
    rig.mdb.call("cashless1", "present_card", funds=100000)
    rig.wait_for(
        lambda: rig.status()["display"]["message"] == "Choose a selection", message="session"
    )
    rig.panel("select", code=code)
    rig.wait_for(
        lambda: rig.mdb.call("cashless1", "status")["charged"] == charged, message="charged"
    )
    rig.wait_idle()
    rig.wait_accepting()


def test_sales_stock_service_and_status_reach_the_fleet(tmp_path: Path, mosquitto: Broker) -> None:
    mid = "vm-0006"
    with listening(mosquitto, mid) as fleet:
        with machine_rig(tmp_path, machine_id=mid, telemetry=_telemetry(mosquitto, mid)) as rig:
            rig.fill_all()
            for _ in range(3):
                rig.mdb.call("changer", "insert_coin", coin_type=COIN_5000)
            rig.wait_for(lambda: rig.status()["display"]["credit"] == 15000, message="credit")
            rig.panel("select", code="A1")
            rig.wait_for(lambda: rig.wait_idle()["counters"]["change_paid"] == 3000)
            (sale,) = fleet.wait(lambda: fleet.of(Kind.SALE), message="sale")
            change = fleet.wait(lambda: fleet.of(Kind.CASH), message="change payout")
            rig.wait_for(lambda: rig.status()["telemetry"]["backlog"] == 0, message="drained")
            assert rig.stop_machine() == 0
        status = fleet.of(Kind.STATUS)
    body = sale.body
    assert (body.selection, body.price, body.method.value) == ("A1", 12000, "cash")
    assert body.product == SELECTIONS[0]["product"]
    assert [(c.value, c.count) for c in body.cash.coins] == [(5000, 3)]
    assert change[0].body.amount == 3000
    seqs = _seqs(fleet)
    assert seqs == list(range(1, len(seqs) + 1))  # in order, no gaps, no loss
    stock = [e.body for e in fleet.of(Kind.STOCK)]
    assert stock[0].kind is StockKind.SNAPSHOT
    a1 = [row for s in stock for row in s.selections if row.code == "A1"]
    assert [(r.count, r.delta) for r in a1[-2:]] == [(8, 8), (7, -1)]
    visits = [e.body for e in fleet.of(Kind.SERVICE)]
    assert visits[0].closed_at is None
    assert [(a.action.value, a.selection, a.count) for a in visits[1].actions] == [
        ("fill", "A1", 8),
        ("fill", "A2", 8),
        ("fill", "B1", 6),
    ]
    assert status[0].body.online is True
    assert status[0].body.firmware.startswith("vendfleet")
    assert status[-1].body.online is False  # explicit offline on SIGTERM


@contextlib.contextmanager
def _private_broker_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="vendfleet-sf-e2e-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_sales_while_the_broker_is_down_arrive_after_it_is_back(tmp_path: Path) -> None:
    mid = "vm-0007"
    users = {"fleet": "fleet-pw", mid: "vm-pw"}
    port = free_port()
    telemetry = _telemetry(f"mqtt://127.0.0.1:{port}", mid, password="vm-pw")
    with _private_broker_folder() as folder:
        # The fleet's persistent session exists before the outage, as in production.
        with run_mosquitto(folder, users, port=port) as broker:
            FleetListener(broker, mid, session="fleet-e2e").close()
        with machine_rig(tmp_path, machine_id=mid, telemetry=telemetry) as rig:
            rig.fill_all()
            _card_sale(rig, "A2", 15000)
            _card_sale(rig, "B1", 23000)
            assert rig.status()["telemetry"]["connected"] is False
            with run_mosquitto(folder, users, port=port) as broker:
                with listening(broker, mid, session="fleet-e2e") as fleet:
                    rig.wait_for(
                        lambda: rig.status()["telemetry"]["backlog"] == 0,
                        timeout=20,
                        message="backlog drained",
                    )
                    fleet.wait(lambda: len(fleet.of(Kind.SALE)) == 2, message="both sales")
                    rig.kill_machine()
                with listening(broker, mid) as late:
                    (status,) = late.wait(lambda: late.of(Kind.STATUS), message="will")
        seqs = _seqs(fleet)
        assert seqs == list(range(1, len(seqs) + 1))
        assert [(e.body.selection, e.body.price) for e in fleet.of(Kind.SALE)] == [
            ("A2", 15000),
            ("B1", 8000),
        ]
        assert status.body.online is False  # the will, after SIGKILL


def _price(fleet: FleetListener, price: int, key: bytes | None = KEY, **times: Any) -> str:
    cid = str(uuid.uuid4())
    args = PriceChangeArgs(selection="A1", price=price, currency="VND")
    fleet.send(
        ChangePrice(id=cid, machine_id=fleet.machine_id, args=args, **command_times(**times)),
        key,
    )
    return cid


def test_fleet_commands_are_verified_applied_and_acknowledged(
    tmp_path: Path, mosquitto: Broker
) -> None:
    mid = "vm-0008"
    with listening(mosquitto, mid) as fleet:
        rig = MachineRig(tmp_path, machine_id=mid, telemetry=_telemetry(mosquitto, mid))
        try:
            rig.start_simulators()
            rig.start_machine()
            rig.wait_devices_ready()
            rig.fill_all()
            fleet.wait(lambda: rig.status()["telemetry"]["connected"], message="connected")
            _commands_checked(rig, fleet)
        finally:
            rig.stop_all()


def _commands_checked(rig: MachineRig, fleet: FleetListener) -> None:
    mid = fleet.machine_id
    cid = _price(fleet, 13000)
    assert fleet.wait_ack(cid) == ["applied"]
    assert rig.selection("A1")["price"] == 13000
    times = command_times()
    same = ChangePrice(
        id=cid,
        machine_id=mid,
        args=PriceChangeArgs(selection="A1", price=13000, currency="VND"),
        **times,
    )
    fleet.send(same, KEY)
    assert fleet.wait_ack(cid, 2) == ["applied", "replayed"]

    stale = _price(fleet, 1000, issued_ago=timedelta(minutes=10), valid_for=timedelta(minutes=5))
    assert fleet.wait_ack(stale) == ["expired"]
    forged = _price(fleet, 1000, key=b"not the machine's key at all")
    assert fleet.wait_ack(forged) == ["bad_signature"]
    assert rig.selection("A1")["price"] == 13000

    # Selection and machine service.
    sel = str(uuid.uuid4())
    args = SelectionServiceArgs(selection="B1", in_service=False, reason="recall")
    fleet.send(SetSelectionService(id=sel, machine_id=mid, args=args, **command_times()), KEY)
    assert fleet.wait_ack(sel) == ["applied"]
    off, on = str(uuid.uuid4()), str(uuid.uuid4())
    fleet.send(
        SetMachineService(
            id=off,
            machine_id=mid,
            args=MachineServiceArgs(in_service=False, reason="flood"),
            **command_times(),
        ),
        KEY,
    )
    assert fleet.wait_ack(off) == ["applied"]
    assert [s["in_service"] for s in rig.status()["selections"]] == [False, False, False]
    fleet.send(
        SetMachineService(
            id=on, machine_id=mid, args=MachineServiceArgs(in_service=True), **command_times()
        ),
        KEY,
    )
    assert fleet.wait_ack(on) == ["applied"]
    states = {s["code"]: (s["in_service"], s["reason"]) for s in rig.status()["selections"]}
    assert states == {"A1": (True, ""), "A2": (True, ""), "B1": (False, "recall")}

    # A sale, then DEX: the file's totals are the machine's counters.
    _card_sale(rig, "A2", 15000)
    dex = str(uuid.uuid4())
    fleet.send(RequestDex(id=dex, machine_id=mid, args=RequestDexArgs(), **command_times()), KEY)
    assert fleet.wait_ack(dex) == ["applied"]
    (report,) = fleet.wait(lambda: fleet.of(Kind.DEX), message="dex")
    counters = rig.status()["counters"]
    totals = report.body.summary.totals
    assert (
        totals.paid_vends_value
        == counters["cashless_sales_value"] + counters["cash_sales_value"]
        == 15000
    )
    assert totals.paid_vends_count == 1
    assert report.body.raw.startswith("DXS")

    # Planogram for the next visit: waits for the door, then takes effect.
    plan = str(uuid.uuid4())
    entries = [
        PlanogramEntry.model_validate({**s, "price": int(s["price"]) + 1000})  # type: ignore[call-overload]
        for s in SELECTIONS
    ]  # fmt: skip
    plan_args = PlanogramChangeArgs(
        selections=entries,
        currency="VND",
        effective=Effective.NEXT_SERVICE,
        config_version="plan-2",
    )
    fleet.send(ChangePlanogram(id=plan, machine_id=mid, args=plan_args, **command_times()), KEY)
    assert fleet.wait_ack(plan) == ["deferred"]
    assert rig.selection("B1")["price"] == 8000
    rig.panel("service_open")
    rig.panel("service_close")
    assert fleet.wait_ack(plan, 2) == ["deferred", "applied"]
    assert rig.selection("B1")["price"] == 9000

    # Resync: everything after seq 3 comes again, plus a fresh snapshot.
    before = len(fleet.events())
    resync = str(uuid.uuid4())
    fleet.send(
        Resync(id=resync, machine_id=mid, args=ResyncArgs(after_seq=3), **command_times()), KEY
    )
    assert fleet.wait_ack(resync) == ["applied"]
    fleet.wait(lambda: len(fleet.events()) >= 2 * before - 3 + 2, message="re-sent rows")
    again = [e.seq for e in fleet.events()[before:]]
    assert again[: before - 3] == list(range(4, before + 1))
    snapshots = [e for e in fleet.of(Kind.STOCK) if e.body.kind is StockKind.SNAPSHOT]
    assert snapshots[-1].seq > before

    # Reboot: acked first, then the process exits with the documented code.
    boot = str(uuid.uuid4())
    fleet.send(Reboot(id=boot, machine_id=mid, args=RebootArgs(), **command_times()), KEY)
    assert rig.wait_machine_exit() == REBOOT_EXIT_CODE
    assert fleet.acks(boot) == [AckOutcome.APPLIED.value]

    # systemd would start it again: fleet prices stay and the replay guard remembers.
    rig.start_machine()
    rig.wait_devices_ready()
    assert rig.selection("A1")["price"] == 13000
    assert rig.selection("B1")["price"] == 9000
    fleet.send(same, KEY)
    assert fleet.wait_ack(cid, 3) == ["applied", "replayed", "replayed"]
