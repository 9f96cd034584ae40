"""The simulated changer's firmware, one command block at a time."""

from __future__ import annotations

import json

import pytest

from drivers.sim.base import Silence, SimAnswer, SimBus
from drivers.sim.changer import SimChanger
from drivers.sim.control import answer_line
from protocols.mdb.changer import (
    CHANGER,
    AlternativePayout,
    ChangerSetup,
    CoinType,
    Dispense,
    FeatureEnable,
    ManualFillReportRequest,
    PayoutStatusRequest,
    PayoutValuePoll,
    Poll,
    Reset,
    Setup,
    TubeStatus,
    TubeStatusAnswer,
)
from protocols.mdb.message import Command
from protocols.mdb.wire import Ack, Data

NOW = 100.0


def send(sim: SimChanger, command: Command, now: float = NOW, ack: bool = True) -> SimAnswer:
    answer = sim.handle(command.to_block(0x08), now)
    if isinstance(answer, Data):
        sim.acked(ack)
    return answer


def poll_hex(sim: SimChanger, now: float = NOW, ack: bool = True) -> str:
    answer = send(sim, Poll(), now, ack)
    return (
        answer.payload.hex()
        if isinstance(answer, Data)
        else ("ack" if isinstance(answer, Ack) else "silent")
    )


def ready(sim: SimChanger, enabled: frozenset[int] = frozenset(range(5))) -> SimChanger:
    assert poll_hex(sim) == "0b"
    send(sim, CoinType(enabled, frozenset(range(5))))
    return sim


def test_power_up_reports_reset_once_and_resends_until_acked() -> None:
    sim = SimChanger()
    assert poll_hex(sim, ack=False) == "0b"
    assert poll_hex(sim) == "0b"  # the ACK was lost: same data again
    assert poll_hex(sim) == "ack"


def test_setup_is_short_like_real_changers() -> None:
    answer = send(SimChanger(), Setup())
    assert isinstance(answer, Data)
    assert len(answer.payload) == 7 + 5
    setup = CHANGER.decode_answer(Setup(), answer.payload)
    assert isinstance(setup, ChangerSetup)
    assert (setup.level, setup.currency_code, setup.scale_factor) == (3, 0x1704, 100)
    assert setup.coin_credits[:5] == (2, 5, 10, 20, 50)


def test_tube_status_flags_full_tubes() -> None:
    sim = SimChanger(tube_counts=(1, 2, 3, 4, 60))
    answer = send(sim, TubeStatus())
    assert isinstance(answer, Data)
    assert CHANGER.decode_answer(TubeStatus(), answer.payload) == TubeStatusAnswer(
        frozenset({4}), (1, 2, 3, 4, 60)
    )


def test_coins_route_by_enable_and_tube_space() -> None:
    sim = ready(SimChanger(tube_counts=(20, 20, 20, 20, 60)), frozenset({0, 4}))
    assert sim.control("insert_coin", {"coin_type": 0}, NOW)["route"] == "tube"
    assert sim.control("insert_coin", {"value": 5000}, NOW)["route"] == "cash_box"
    assert sim.control("insert_coin", {"coin_type": 1}, NOW)["accepted"] is False
    # tube (01 00 0000) count 21; cash box (01 00 0100) count 60; rejected (01 11 0001).
    assert poll_hex(sim) == "5015443c7114"


def test_reset_forgets_enables_and_pending_data() -> None:
    sim = ready(SimChanger())
    sim.control("insert_coin", {"coin_type": 2}, NOW)
    assert send(sim, Reset()) == Ack()
    assert sim.enabled == frozenset()
    assert poll_hex(sim) == "0b"
    assert poll_hex(sim) == "ack"


def test_dispense_is_busy_while_paying_and_ignores_a_second_one() -> None:
    sim = ready(SimChanger(level=2))
    send(sim, Dispense(1, 3))
    assert poll_hex(sim, NOW + 0.01) == "02"
    send(sim, Dispense(0, 1), NOW + 0.02)
    assert sim.commands_while_busy == 1
    assert poll_hex(sim, NOW + 0.2) == "ack"
    assert sim.status()["paid_out"] == [0, 3, 0, 0, 0]
    assert sim.status()["tubes"] == [20, 17, 20, 20, 20]


def test_dispense_pays_only_what_the_tube_holds() -> None:
    sim = ready(SimChanger(level=2, tube_counts=(2, 0, 0, 0, 0)))
    send(sim, Dispense(0, 5))
    poll_hex(sim, NOW + 1.0)
    assert sim.status()["paid_out"] == [2, 0, 0, 0, 0]


def test_alternative_payout_needs_the_feature_and_picks_largest_first() -> None:
    sim = ready(SimChanger())
    send(sim, AlternativePayout(37))
    assert poll_hex(sim, NOW + 0.01) == "ack"  # feature not enabled: ignored
    send(sim, FeatureEnable(1))
    send(sim, AlternativePayout(37), NOW + 0.02)
    assert send(sim, PayoutStatusRequest(), NOW + 0.03) == Ack()  # still paying
    progress = send(sim, PayoutValuePoll(), NOW + 0.13)
    assert progress == Data(bytes((20 + 10,)))  # two coins out after 100 ms
    answer = send(sim, PayoutStatusRequest(), NOW + 1.0)
    assert answer == Data(bytes((1, 1, 1, 1, 0)))  # 20 + 10 + 5 + 2
    assert send(sim, PayoutValuePoll(), NOW + 1.0) == Ack()


def test_level2_changer_does_not_answer_expansion() -> None:
    sim = SimChanger(level=2)
    assert isinstance(sim.handle(bytes((0x0F, 0x00)), NOW), Silence)


def test_garbage_command_gets_silence() -> None:
    assert isinstance(SimChanger().handle(bytes((0x0F, 0x99)), NOW), Silence)


def test_unplugged_changer_is_silent_and_comes_back_reset() -> None:
    sim = ready(SimChanger())
    bus = SimBus(sim)
    sim.control("unplug", {}, NOW)
    assert isinstance(bus.handle(bytes((0x0B,)), NOW), Silence)
    assert sim.control("insert_coin", {"coin_type": 0}, NOW)["accepted"] is False
    sim.control("plug", {}, NOW)
    assert sim.enabled == frozenset()
    assert poll_hex(sim) == "0b"


def test_power_cycle_stops_a_payout_and_keeps_the_tubes() -> None:
    sim = ready(SimChanger(level=2))
    send(sim, Dispense(4, 10))
    result = sim.control("power_cycle", {}, NOW + 0.12)
    assert result == {"payout_stopped": True}
    assert sim.status()["paid_out"] == [0, 0, 0, 0, 2]
    assert sim.status()["tubes"] == [20, 20, 20, 20, 18]


def test_manual_fill_and_dispense() -> None:
    sim = ready(SimChanger())
    assert sim.control("fill", {"coin_type": 0, "count": 50}, NOW)["added"] == 40
    assert send(sim, ManualFillReportRequest()) == Data(bytes((40, 0, 0, 0, 0)))
    result = sim.control("manual_dispense", {"coin_type": 1, "count": 9}, NOW)
    assert result["dispensed"] == 9
    assert poll_hex(sim) == "f10da10b"  # 7 coins, 13 left; 2 coins, 11 left


def test_jam_refuses_coins_and_reports() -> None:
    sim = ready(SimChanger())
    sim.control("jam", {}, NOW)
    assert sim.control("insert_coin", {"coin_type": 0}, NOW) == {
        "accepted": False,
        "coin_type": 0,
        "reason": "jammed",
    }
    assert poll_hex(sim) == "0c"
    sim.control("clear_jam", {}, NOW)
    assert sim.control("insert_coin", {"coin_type": 0}, NOW)["accepted"] is True


def test_changer_busy_action() -> None:
    sim = ready(SimChanger())
    sim.control("busy", {"seconds": 0.5}, NOW)
    assert poll_hex(sim, NOW + 0.1) == "0a"
    assert poll_hex(sim, NOW + 0.6) == "ack"


@pytest.mark.parametrize(
    ("action", "args", "error"),
    [
        ("fly", {}, ValueError),
        ("insert_coin", {}, ValueError),
        ("insert_coin", {"coin_type": 7}, ValueError),
        ("insert_coin", {"coin_type": "2"}, TypeError),
        ("insert_coin", {"value": 300}, ValueError),
        ("set_tubes", {"counts": [1, -1]}, ValueError),
        ("busy", {"seconds": True}, ValueError),
        ("fill", {"coin_type": 0}, ValueError),
    ],
)
def test_bad_control_requests_name_the_problem(
    action: str, args: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        SimChanger().control(action, args, NOW)


def test_control_socket_answers_errors_as_json() -> None:
    sim = SimChanger()

    def handler(_device: str, action: str, args: dict[str, object]) -> dict[str, object]:
        return sim.control(action, args, NOW)

    bad = json.loads(answer_line(b'{"action": "insert_coin", "args": {"coin_type": 99}}', handler))
    assert bad["ok"] is False
    assert "coin type 99" in bad["error"]
    good = json.loads(answer_line(b'{"action": "set_tubes", "args": {"counts": [5, 5]}}', handler))
    assert good == {"ok": True, "result": {"tubes": [5, 5, 0, 0, 0]}}


def test_status_reports_money_in_minor_units() -> None:
    sim = ready(SimChanger(tube_counts=(0, 0, 0, 0, 0)))
    sim.control("insert_coin", {"coin_type": 4}, NOW)
    status = sim.status()
    assert status["tube_value"] == 5000
    assert status["enabled"] == [0, 1, 2, 3, 4]
    assert status["busy"] is False
