"""Service mode and the operator's policies, through the front panel of a running machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.rig import MachineRig, machine_rig

pytestmark = [pytest.mark.e2e, pytest.mark.pty]

COIN_5000, COIN_2000 = 4, 3


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[MachineRig]:
    with machine_rig(tmp_path, credit_timeout=1.5) as r:
        r.fill_all()
        yield r


def test_service_actions_need_the_door_open(rig: MachineRig) -> None:
    refused = rig.panel("test_vend", code="A1")
    assert refused["ok"] is False
    assert "service mode" in refused["error"]
    assert rig.panel("select", code="Z9")["ok"] is False
    assert rig.panel("no_such_command")["ok"] is False


def test_test_vend_dispenses_without_money(rig: MachineRig) -> None:
    rig.panel("service_open")
    assert rig.panel("select", code="A1")["ok"] is False  # no customers while in service
    assert rig.panel("test_vend", code="A1")["ok"]
    rig.wait_for(lambda: rig.board_dispensed() == {11: 1}, message="test vend dispensed")
    status = rig.wait_idle()
    assert status["counters"]["test_vends"] == 1
    assert status["counters"]["cash_sales_value"] == 0
    assert rig.selection("A1")["stock"] == 7
    rig.panel("service_close")
    assert status["invariant_violations"] == []


def test_coins_with_the_door_open_fill_the_tubes_not_the_credit(rig: MachineRig) -> None:
    rig.panel("service_open")
    rig.mdb.call("changer", "insert_coin", coin_type=COIN_5000)
    rig.wait_for(lambda: rig.status()["counters"]["manual_fill_value"] == 5000, message="fill")
    status = rig.status()
    assert status["display"]["credit"] == 0
    assert status["counters"]["cash_in"] == 0
    paid_before = rig.mdb.call("changer", "status")["paid_out_value"]
    assert rig.panel("tube_payout", coin_type=COIN_2000, count=2)["ok"]
    rig.wait_for(
        lambda: rig.status()["counters"]["manual_payout_value"] == 4000, message="tube payout"
    )
    assert rig.mdb.call("changer", "status")["paid_out_value"] - paid_before == 4000
    collected = rig.panel("cash_collect")
    assert collected["ok"]
    assert {t["coin_type"] for t in collected["tubes"]} >= {COIN_5000, COIN_2000}
    rig.panel("service_close")
    assert rig.status()["invariant_violations"] == []


def test_out_of_service_and_back(rig: MachineRig) -> None:
    assert rig.panel("out_of_service", code="A2", reason="cleaning")["ok"]
    assert rig.selection("A2")["in_service"] is False
    for _ in range(3):
        rig.mdb.call("changer", "insert_coin", coin_type=COIN_5000)
    rig.wait_for(lambda: rig.status()["display"]["credit"] == 15000, message="credit")
    rig.panel("select", code="A2")
    assert "unavailable" in rig.status()["display"]["message"]
    assert rig.board_dispensed() == {}
    rig.panel("service_open")
    rig.panel("in_service", code="A2")
    rig.panel("service_close")
    assert rig.selection("A2")["in_service"] is True


def test_unused_credit_is_paid_back_after_the_timeout(rig: MachineRig) -> None:
    rig.mdb.call("changer", "insert_coin", coin_type=COIN_5000)
    rig.wait_for(lambda: rig.status()["display"]["credit"] == 5000, message="credit")
    status = rig.wait_for(
        lambda: (st := rig.status())["counters"]["refunds_paid"] == 5000 and st,
        timeout=10,
        message="credit timed out and refunded",
    )
    assert status["display"]["credit"] == 0
    assert status["invariant_violations"] == []


def test_return_lever_refunds_the_credit(rig: MachineRig) -> None:
    rig.mdb.call("changer", "insert_coin", coin_type=COIN_2000)
    rig.wait_for(lambda: rig.status()["display"]["credit"] == 2000, message="credit")
    rig.mdb.call("changer", "press_return_lever")
    rig.wait_for(lambda: rig.status()["counters"]["refunds_paid"] == 2000, message="lever refund")
