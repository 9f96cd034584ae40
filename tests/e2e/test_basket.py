"""Back to back: an automated store (two dispensing units, one payment front) selling
baskets over pseudo-terminals, with a jam and with a power cut mid-basket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.basket_rig import STORE_SELECTIONS, StoreRig, store_rig

pytestmark = [pytest.mark.e2e, pytest.mark.pty]

COIN_5000 = 4
PRICES = {str(s["code"]): int(str(s["price"])) for s in STORE_SELECTIONS}
WHERE = {str(s["code"]): (str(s["unit"]), int(str(s["motor"]))) for s in STORE_SELECTIONS}


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[StoreRig]:
    with store_rig(tmp_path) as r:
        r.fill_all()
        yield r


def _fill_basket(rig: StoreRig) -> None:
    for code in ("A1", "A2", "B1"):
        reply = rig.panel("basket_add", code=code)
        assert reply["ok"], reply
    assert rig.basket()["lines"] == [
        {"code": "A1", "quantity": 1},
        {"code": "A2", "quantity": 1},
        {"code": "B1", "quantity": 1},
    ]


def _insert(rig: StoreRig, amount: int) -> None:
    for _ in range(amount // 5000):
        rig.mdb.call("changer", "insert_coin", coin_type=COIN_5000)
    rig.wait_for(lambda: rig.status()["display"]["credit"] == amount, message=f"{amount} credit")


def _delivered_by_boards(rig: StoreRig) -> dict[str, int]:
    """Per selection, what its unit's board says it turned out."""
    counts = {unit: rig.unit_dispensed(unit) for unit in ("tower-1", "tower-2")}
    return {code: counts[unit].get(motor, 0) for code, (unit, motor) in WHERE.items()}


def _outcomes(basket: dict[str, object]) -> dict[str, str]:
    items = basket["items"]
    assert isinstance(items, list)
    return {str(it["code"]): str(it["status"]) for it in items}


def _basket_sale(rig: StoreRig) -> dict[str, object]:
    sales = [json.loads(b) for b in rig.outbox("sale")]
    baskets = [s for s in sales if s.get("lines")]
    assert len(baskets) == 1, sales
    sale: dict[str, object] = baskets[0]
    return sale


def _receipt_lines(sale: dict[str, object]) -> list[tuple[str, int]]:
    receipt = sale["receipt"]
    assert isinstance(receipt, dict)
    return sorted((str(ln["code"]), int(ln["quantity"])) for ln in receipt["lines"])


def test_cash_basket_across_two_units_with_a_jam_pays_back_exactly(rig: StoreRig) -> None:
    rig.boards["tower-1"].call("dispenser", "fault", motor=12, fault="jam")  # A2
    paid_before = rig.mdb.call("changer", "status")["paid_out_value"]
    _fill_basket(rig)
    _insert(rig, 40000)
    reply = rig.panel("checkout")
    assert reply["ok"], reply
    basket = rig.wait_basket_done()
    assert _outcomes(basket) == {"A1": "delivered", "A2": "failed", "B1": "delivered"}
    # Both units were used, each for its own selection (both have a motor 11).
    assert rig.unit_dispensed("tower-1") == {11: 1}
    assert rig.unit_dispensed("tower-2") == {11: 1}
    status = rig.wait_for(
        lambda: (
            (st := rig.wait_idle())["counters"]["refunds_paid"] + st["counters"]["ious"] == 20000
            and st
        ),
        message="refund of the jammed item and change paid",
    )
    counters = status["counters"]
    assert counters["cash_sales_value"] == 20000
    paid = rig.mdb.call("changer", "status")["paid_out_value"] - paid_before
    assert paid == counters["refunds_paid"]
    assert status["invariant_violations"] == []
    sale = _basket_sale(rig)
    assert sale["price"] == 20000
    assert _receipt_lines(sale) == [("A1", 1), ("B1", 1)]
    assert rig.check()["ok"]


def test_card_basket_with_a_jam_charges_exactly_the_delivered_total(rig: StoreRig) -> None:
    rig.boards["tower-2"].call("dispenser", "fault", motor=11, fault="jam")  # B1
    rig.mdb.call("cashless1", "present_card", funds=100000)
    rig.wait_for(
        lambda: rig.status()["display"]["message"] == "Choose a selection", message="session"
    )
    _fill_basket(rig)
    assert rig.panel("checkout")["ok"]
    basket = rig.wait_basket_done()
    assert _outcomes(basket) == {"A1": "delivered", "A2": "delivered", "B1": "failed"}
    assert rig.unit_dispensed("tower-1") == {11: 1, 12: 1}
    assert rig.unit_dispensed("tower-2") == {}

    def reader_settled() -> dict[str, object] | None:
        r = rig.mdb.call("cashless1", "status")
        return r if r["state"] == "enabled" and r["credited"] else None

    reader = rig.wait_for(reader_settled, message="reader settled")
    charged = int(reader["charged"]) - int(reader["refunded"]) - int(reader["credited"])
    assert charged == 27000  # A1 + A2; the jammed B1 given back
    status = rig.wait_idle()
    assert status["counters"]["cashless_sales_value"] == 27000
    assert status["invariant_violations"] == []
    sale = _basket_sale(rig)
    assert sale["method"] == "cashless"
    assert _receipt_lines(sale) == [("A1", 1), ("A2", 1)]
    refunds = [json.loads(b) for b in rig.outbox("refund")]
    assert [(r["kind"], r["amount"]) for r in refunds] == [("cashless_failed_vend", 8000)]


def test_power_cut_mid_basket_dispenses_nothing_twice_and_charges_nothing_undelivered(
    tmp_path: Path,
) -> None:
    with store_rig(tmp_path, vend_time=1.5) as rig:
        rig.fill_all()
        paid_before = rig.mdb.call("changer", "status")["paid_out_value"]
        _fill_basket(rig)
        _insert(rig, 35000)
        assert rig.panel("checkout")["ok"]
        rig.wait_for(lambda: sum(_delivered_by_boards(rig).values()) >= 1, message="first item out")
        rig.kill_machine()  # the power goes while the basket is being dispensed
        rig.start_machine()
        rig.wait_devices_ready()
        basket = rig.wait_basket_done(timeout=60)
        rig.wait_idle(timeout=30)
        delivered = _delivered_by_boards(rig)
        assert all(n <= 1 for n in delivered.values()), delivered  # nothing dispensed twice
        outcomes = _outcomes(basket)
        for code, n in delivered.items():
            assert (outcomes[code] == "delivered") == (n == 1), (code, outcomes, delivered)
        value = sum(PRICES[code] * n for code, n in delivered.items())
        status = rig.wait_for(
            lambda: (
                (st := rig.status())["counters"]["refunds_paid"]
                + st["counters"]["change_paid"]
                + st["counters"]["ious"]
                == 35000 - value
                and not st["busy"]
                and st
            ),
            timeout=30,
            message="undelivered items paid back",
        )
        assert status["counters"]["cash_sales_value"] == value  # no charge for undelivered
        paid = rig.mdb.call("changer", "status")["paid_out_value"] - paid_before
        assert paid == status["counters"]["refunds_paid"] + status["counters"]["change_paid"]
        for sel in status["selections"]:
            assert sel["vends"] == delivered[sel["code"]]
        assert rig.check()["ok"]


def test_power_cut_mid_card_basket_charges_nothing_undelivered(tmp_path: Path) -> None:
    with store_rig(tmp_path, vend_time=1.5) as rig:
        rig.fill_all()
        rig.mdb.call("cashless1", "present_card", funds=100000)
        rig.wait_for(
            lambda: rig.status()["display"]["message"] == "Choose a selection", message="session"
        )
        _fill_basket(rig)
        assert rig.panel("checkout")["ok"]
        rig.wait_for(lambda: sum(_delivered_by_boards(rig).values()) >= 1, message="first item out")
        rig.kill_machine()
        rig.start_machine()
        rig.wait_devices_ready()
        rig.wait_basket_done(timeout=60)
        status = rig.wait_idle(timeout=30)
        delivered = _delivered_by_boards(rig)
        assert all(n <= 1 for n in delivered.values()), delivered
        value = sum(PRICES[code] * n for code, n in delivered.items())
        reader = rig.mdb.call("cashless1", "status")
        net = int(reader["charged"]) - int(reader["refunded"]) - int(reader["credited"])
        assert net <= value  # the restart voided the approval: at most what was delivered
        counters = status["counters"]
        assert net == counters["cashless_sales_value"]
        assert counters["cashless_sales_value"] + counters["cashless_unsettled_value"] == value
        assert rig.check()["ok"]


def test_single_dispenser_config_still_sells(tmp_path: Path) -> None:
    """The old ``[dispenser]`` table keeps working next to the basket commands."""
    from tests.e2e.rig import machine_rig  # noqa: PLC0415

    with machine_rig(tmp_path) as rig:
        rig.fill_all()
        rig.panel("basket_add", code="B1", quantity=2)
        for _ in range(4):
            rig.mdb.call("changer", "insert_coin", coin_type=COIN_5000)
        rig.wait_for(lambda: rig.status()["display"]["credit"] == 20000, message="credit")
        assert rig.panel("checkout")["ok"]
        rig.wait_for(lambda: rig.board_dispensed() == {21: 2}, message="two B1 out")
        status = rig.wait_for(
            lambda: (st := rig.wait_idle())["counters"]["change_paid"] == 4000 and st,
            message="change",
        )
        assert status["counters"]["cash_sales_value"] == 16000
        assert status["invariant_violations"] == []
