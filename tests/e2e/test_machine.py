"""Back-to-back: the controller process against simulators in their own processes, over ptys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.rig import MachineRig, machine_rig

pytestmark = [pytest.mark.e2e, pytest.mark.pty]

COIN_5000, COIN_2000, COIN_1000 = 4, 3, 2
BILL_20K, BILL_50K = 4, 5


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[MachineRig]:
    with machine_rig(tmp_path) as r:
        r.fill_all()
        yield r


def _credit(rig: MachineRig) -> int:
    credit: int = rig.status()["display"]["credit"]
    return credit


def _books_balance(rig: MachineRig) -> None:
    status = rig.status()
    assert status["invariant_violations"] == []


def test_cash_sale_with_change(rig: MachineRig) -> None:
    paid_before = rig.mdb.call("changer", "status")["paid_out_value"]
    for _ in range(3):
        rig.mdb.call("changer", "insert_coin", coin_type=COIN_5000)
    rig.wait_for(lambda: _credit(rig) == 15000, message="15,000 credit")
    assert rig.panel("select", code="A1")["ok"]
    status = rig.wait_for(
        lambda: (st := rig.wait_idle())["counters"]["change_paid"] == 3000 and st,
        message="change paid",
    )
    assert status["counters"]["cash_sales_value"] == 12000
    assert rig.selection("A1")["stock"] == 7
    assert rig.board_dispensed() == {11: 1}
    assert rig.mdb.call("changer", "status")["paid_out_value"] - paid_before == 3000
    _books_balance(rig)


def test_bill_escrow_then_cancel_returns_the_bill(rig: MachineRig) -> None:
    rig.mdb.call("bill", "insert_bill", bill_type=BILL_20K)
    rig.wait_for(lambda: _credit(rig) == 20000, message="escrowed bill shown as credit")
    assert rig.status()["counters"]["cash_in"] == 0
    rig.panel("cancel")
    rig.wait_for(lambda: rig.mdb.call("bill", "status")["escrow"] is None, message="bill back")
    bill = rig.mdb.call("bill", "status")
    assert bill["stacked_value"] == 0
    rig.wait_for(lambda: _credit(rig) == 0, message="credit cleared")
    assert rig.status()["counters"]["cash_in"] == 0
    _books_balance(rig)


def test_cashless_approved_dispensed_then_vend_success(rig: MachineRig) -> None:
    rig.mdb.call("cashless1", "present_card", funds=100000)
    rig.wait_for(
        lambda: rig.status()["display"]["message"] == "Choose a selection", message="session"
    )
    rig.panel("select", code="A2")
    reader = rig.wait_for(
        lambda: (r := rig.mdb.call("cashless1", "status"))["last_vend"] and r,
        message="vend settled",
    )
    assert reader["last_vend"]["outcome"] == "success"
    assert reader["charged"] == 15000
    assert reader["refunded"] == 0
    assert rig.board_dispensed() == {12: 1}
    assert rig.wait_idle()["counters"]["cashless_sales_value"] == 15000
    _books_balance(rig)


def test_cashless_jam_fails_the_vend_refunds_and_keeps_other_selections(rig: MachineRig) -> None:
    rig.board.call("dispenser", "fault", motor=12, fault="jam")
    rig.mdb.call("cashless1", "present_card", funds=100000)
    rig.wait_for(
        lambda: rig.status()["display"]["message"] == "Choose a selection", message="session"
    )
    rig.panel("select", code="A2")
    rig.wait_for(lambda: rig.mdb.call("cashless1", "status")["refunded"] == 15000, message="refund")
    assert rig.mdb.call("cashless1", "status")["charged"] == 15000  # approved, then given back
    assert rig.selection("A2")["in_service"] is False
    assert rig.status()["counters"]["cashless_sales_value"] == 0
    # The machine stays up for the other selections.
    rig.wait_for(lambda: rig.mdb.call("cashless1", "status")["state"] == "enabled", message="idle")
    rig.mdb.call("cashless1", "present_card", funds=100000)
    rig.wait_for(
        lambda: rig.status()["display"]["message"] == "Choose a selection", message="session"
    )
    rig.panel("select", code="A1")
    rig.wait_for(lambda: rig.board_dispensed() == {11: 1}, message="second selection sold")
    rig.wait_for(lambda: rig.mdb.call("cashless1", "status")["charged"] == 27000, message="charged")
    _books_balance(rig)


def test_exact_change_mode_is_entered_and_left(rig: MachineRig) -> None:
    # The operator empties the tubes by hand; closing the door makes the machine re-read them.
    rig.mdb.call("changer", "set_tubes", counts=[0, 0, 0, 0, 0])
    rig.panel("service_open")
    rig.panel("service_close")
    rig.wait_for(lambda: rig.status()["exact_change"], message="exact change on")
    bills = rig.wait_for(
        lambda: BILL_50K not in (b := rig.mdb.call("bill", "status")["enabled"]) and b,
        message="50,000 bills refused",
    )
    assert 0 in bills  # a 1,000 bill can still be taken: nothing costs that little
    rig.mdb.call("changer", "set_tubes", counts=[50, 50, 50, 50, 50])
    rig.panel("service_open")
    rig.panel("service_close")
    rig.wait_for(lambda: not rig.status()["exact_change"], message="exact change off")
    rig.wait_for(lambda: BILL_50K in rig.mdb.call("bill", "status")["enabled"], message="bills on")


def test_changer_out_of_coins_mid_payout_leaves_an_iou(rig: MachineRig) -> None:
    rig.mdb.call("bill", "insert_bill", bill_type=BILL_20K)
    rig.wait_for(lambda: _credit(rig) == 20000, message="bill in escrow")
    rig.panel("select", code="B1")  # 12,000 change is due after the drop
    rig.mdb.call("changer", "set_tubes", counts=[0, 0, 0, 1, 0])  # only one 2,000 coin left
    status = rig.wait_for(
        lambda: (st := rig.wait_idle())["counters"]["ious"] > 0 and st, message="IOU"
    )
    counters = status["counters"]
    assert counters["change_paid"] + counters["ious"] == 12000
    assert counters["change_paid"] == rig.mdb.call("changer", "status")["paid_out_value"]
    _books_balance(rig)


def test_reader_reset_mid_session_charges_nothing(rig: MachineRig) -> None:
    rig.mdb.call("cashless1", "present_card", funds=100000)
    rig.wait_for(
        lambda: rig.status()["display"]["message"] == "Choose a selection", message="session"
    )
    rig.mdb.call("cashless1", "power_cycle")
    rig.wait_for(lambda: rig.status()["display"]["message"] == "Thank you", message="session over")
    rig.wait_for(lambda: rig.status()["devices"]["cashless1"] == "ready", message="reader back")
    rig.wait_for(
        lambda: rig.mdb.call("cashless1", "status")["state"] == "enabled", message="enabled"
    )
    assert rig.mdb.call("cashless1", "status")["charged"] == 0
    # A new customer can pay by card again.
    rig.mdb.call("cashless1", "present_card", funds=100000)
    rig.wait_for(
        lambda: rig.status()["display"]["message"] == "Choose a selection", message="session"
    )
    rig.panel("select", code="B1")
    rig.wait_for(lambda: rig.mdb.call("cashless1", "status")["charged"] == 8000, message="charged")
    _books_balance(rig)


def test_invalid_config_names_the_key(tmp_path: Path) -> None:
    import subprocess  # noqa: PLC0415

    from tests.e2e.rig import VEND  # noqa: PLC0415

    bad = tmp_path / "machine.toml"
    bad.write_text(
        '[machine]\nid = "vm-1"\ncurrency = "XYZ"\n[mdb]\nurl = "memory://"\n'
        '[dispenser]\nurl = "memory://"\n[[selection]]\ncode = "A1"\nproduct = "x"\n'
        "price = -5\ncapacity = 10\npar = 8\nmotor = 1\n"
    )
    out = subprocess.run(
        [VEND, "machine", "run", "-c", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 2
    assert "machine.currency" in out.stderr
    assert "selection[0].price" in out.stderr
