"""A smart cabinet back to back: `vend machine run` against `vend sim mdb` (card reader) and
`vend sim cabinet` (the cabinet board), each a process on its own pseudo-terminal.

Checks read the simulators' own ledgers (the reader's charged / refunded / credited, the
cabinet's shelves), the machine's journal and `vend machine check` -- never what the test
itself set up.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.cabinet_rig import PRE_AUTH, PRICES, cabinet_rig

pytestmark = pytest.mark.e2e


def test_two_taken_one_put_back_is_charged_exactly_one(tmp_path: Path) -> None:
    with cabinet_rig(tmp_path) as rig:
        rig.tap_card()
        view = rig.wait_phase("unlocked")
        session_id = view["session_id"]
        assert rig.act("status")["locked"] is False
        rig.act("open_door")
        rig.act("take", shelf=0, count=2)
        rig.act("put_back", shelf=0, count=1)
        rig.act("close_door")
        last = rig.wait_settled(session_id)

        assert last["payment"] == "captured"
        assert last["charge"] == PRICES["COLA"]
        assert [(ln["sku"], ln["quantity"]) for ln in last["lines"]] == [("COLA", 1)]
        # The reader's ledger: the pre-authorisation, then the difference given back.
        rig.wait_for(lambda: rig.reader()["state"] == "enabled", 15, "card session over")
        reader = rig.reader()
        assert reader["charged"] == PRE_AUTH
        assert rig.net_charged() == PRICES["COLA"]
        # One sale listing the item, with its e-receipt.
        sales = rig.outbox("sale")
        assert len(sales) == 1
        sale = sales[0]
        assert sale["price"] == PRICES["COLA"]
        assert sale["settled"] is True
        assert [(ln["selection"], ln["quantity"], ln["unit_price"]) for ln in sale["lines"]] == [
            ("COLA", 1, PRICES["COLA"])
        ]
        receipt = sale["receipt"]
        assert [(ln["product"], ln["quantity"]) for ln in receipt["lines"]] == [
            ("Coca-Cola 330ml", 1)
        ]
        assert receipt["total"] == PRICES["COLA"]
        assert rig.outbox("review") == []
        # The cabinet really lost one can, and locked again.
        cab = rig.act("status")
        assert cab["locked"] is True
        assert cab["shelves"][0]["items"] == 4
        check = rig.check()
        assert check["exit_code"] == 0, check


def test_a_door_held_open_raises_the_alarm_and_is_settled_by_the_operator_rule(
    tmp_path: Path,
) -> None:
    policy = {"held_open_limit_s": 1, "held_open_rule": "hold_for_review"}
    with cabinet_rig(tmp_path, policy=policy) as rig:
        rig.tap_card()
        session_id = rig.wait_phase("unlocked")["session_id"]
        rig.act("open_door")
        rig.act("take", shelf=2)
        # Past the limit: the cabinet says so and the machine tells the fleet.
        alarms = rig.wait_for(
            lambda: [a for a in rig.outbox("alarm") if a["code"] == "door_open"], 20, "alarm"
        )
        assert alarms[0]["state"] == "raised"
        assert alarms[0]["device"] == "cabinet"
        rig.act("close_door")
        last = rig.wait_settled(session_id)

        # hold_for_review: nothing charged now, a person decides from the evidence.
        assert last["outcome"] == "held_for_review"
        assert last["charge"] == 0
        rig.wait_for(lambda: rig.reader()["state"] == "enabled", 15, "card session over")
        assert rig.net_charged() == 0
        assert rig.outbox("sale") == []
        (review,) = rig.outbox("review")
        assert review["session_id"] == session_id
        assert review["rule"] == "hold_for_review"
        assert any("held open" in reason for reason in review["reasons"])
        assert review["authorised"] == PRE_AUTH
        assert review["charged"] == 0
        assert [(ln["selection"], ln["quantity"]) for ln in review["plausible_lines"]] == [
            ("SANDWICH", 1)
        ]
        assert review["due"] == PRICES["SANDWICH"]
        shelf2 = next(e for e in review["evidence"] if e["shelf"] == 2)
        assert shelf2["weight_before_g"] - shelf2["weight_after_g"] == 180
        # The door alarm clears when the door closes.
        states = [a["state"] for a in rig.outbox("alarm") if a["code"] == "door_open"]
        assert states == ["raised", "cleared"]
        assert rig.check()["exit_code"] == 0


def test_controller_killed_with_the_door_open_settles_once_under_the_power_loss_rule(
    tmp_path: Path,
) -> None:
    with cabinet_rig(tmp_path) as rig:
        rig.tap_card()
        session_id = rig.wait_phase("unlocked")["session_id"]
        rig.act("open_door")
        rig.wait_phase("open")
        rig.act("take", shelf=1)
        rig.kill_machine()  # power cut of the controller, door open, a bottle in hand

        rig.start_machine()
        rig.wait_devices_ready()
        rig.wait_phase("power_lost")  # finishing the open session before anything else
        rig.act("close_door")
        last = rig.wait_settled(session_id)

        # Counted from the inventory before unlock vs after: one bottle of water, charged
        # under charge_confident_only -- but the reader was reset by the restart, so its
        # authorisation is void: the sale is recorded unsettled and goes to review.
        assert [(ln["sku"], ln["quantity"]) for ln in last["lines"]] == [("WATER", 1)]
        assert last["charge"] == PRICES["WATER"]
        assert last["payment"] == "unsettled"
        assert rig.net_charged() == 0  # nothing charged twice, nothing for items not taken
        (sale,) = rig.outbox("sale")
        assert sale["settled"] is False
        assert sale["price"] == PRICES["WATER"]
        assert "receipt" not in sale or sale["receipt"] is None
        reviews = rig.outbox("review")
        assert any(r["outcome"] == "unsettled" and r["due"] == PRICES["WATER"] for r in reviews)
        assert any(
            a["code"] == "other" and "power_lost" in a["detail"] for a in rig.outbox("alarm")
        )

        # A second restart finds nothing open: the session is not settled again.
        rig.stop_machine()
        rig.start_machine()
        rig.wait_devices_ready()
        rig.wait_phase("idle")
        assert len(rig.outbox("sale")) == 1
        assert rig.check()["exit_code"] == 0
        # And the cabinet works again for the next customer.
        rig.tap_card()
        assert rig.wait_phase("unlocked")["session_id"] != session_id


def test_after_a_controller_restart_the_same_card_tapped_again_pays_once(
    tmp_path: Path,
) -> None:
    with cabinet_rig(tmp_path, policy={"resume_window_s": 60}) as rig:
        rig.tap_card()
        session_id = rig.wait_phase("unlocked")["session_id"]
        rig.act("open_door")
        rig.wait_phase("open")
        rig.act("take", shelf=1)
        rig.kill_machine()  # the controller dies with the door open

        rig.start_machine()
        rig.wait_devices_ready()
        rig.wait_phase("power_lost")
        rig.act("close_door")
        # The reader's reset voided the authorisation: the display asks for the card.
        rig.wait_for(lambda: rig.cabinet_view()["awaiting_card"], 30, "asking for the card")
        assert rig.net_charged() == 0
        rig.tap_card()
        last = rig.wait_settled(session_id)

        assert (last["payment"], last["charged"]) == ("captured", PRICES["WATER"])
        rig.wait_for(lambda: rig.reader()["state"] == "enabled", 15, "card session over")
        assert rig.net_charged() == PRICES["WATER"]
        (sale,) = rig.outbox("sale")
        assert (sale["settled"], sale["price"]) == (True, PRICES["WATER"])
        assert sale["receipt"]["total"] == PRICES["WATER"]
        assert not [r for r in rig.outbox("review") if r["rule"] == "payment"]

        # A second restart finds the session closed: nothing is charged again.
        reports = len(rig.outbox("stock"))
        rig.stop_machine()
        rig.start_machine()
        rig.wait_devices_ready()
        rig.wait_phase("idle")
        # The shelves are reported at every start: the water bottle is gone.
        stock = rig.wait_for(lambda: rig.outbox("stock")[reports:], 20, "stock at start-up")
        water = next(r for r in stock[0]["selections"] if r["code"] == "WATER")
        assert water["count"] == rig.act("status")["shelves"][1]["items"] == 4
        assert len(rig.outbox("sale")) == 1
        assert rig.net_charged() == PRICES["WATER"]
        assert rig.check()["exit_code"] == 0
