from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.link.qibixx_lines import parse_sniff
from drivers.sim.adapter import AdapterByteHandler, QibixxAdapterSim
from drivers.sim.base import SimBus
from tests.drivers.link.fakes import JUST_RESET, FakeChanger


def _sim(master: bool = True) -> tuple[QibixxAdapterSim, FakeChanger]:
    changer = FakeChanger()
    sim = QibixxAdapterSim(SimBus(changer))
    if master:
        assert sim.handle_line("M,1", 0.0) == ["m,ACK"]
    return sim, changer


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("M,1", ["m,ACK"]),
        ("M,0", ["m,ACK"]),
        ("M,2", ["m,NACK"]),
        ("V", ["v,4.2.0.0,vendfleet-sim"]),
        ("X,1", ["x,ACK"]),
        ("X,0", ["x,ACK"]),
        ("", []),
        ("   ", []),
        ("R,08", ["p,ACK"]),
        ("R,0C,000F000F", ["p,ACK"]),
        ("R,0c,00,0f,00,0f", ["p,ACK"]),  # bytes as separate fields, lower case
        ("R,33", ["p,NACK"]),  # nobody at that address
        ("R,RESET", ["p,ACK"]),
    ],
)
def test_line_protocol(line: str, answer: list[str]) -> None:
    sim, _ = _sim()
    assert sim.handle_line(line, 1.0) == answer


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("R,0", "address must be two hex digits"),
        ("R,", "address must be two hex digits"),
        ("R,0B,0", "not an even number of hex digits"),
        ("R,GG", "not an even number of hex digits"),
        ("R,0B," + "00" * 40, "exceeds 35"),
        ("X,2", "sniffer mode must be X,0 or X,1"),
        ("Q,1", "unknown command 'Q,1'"),
        ("r,0b", "unknown command 'r,0b'"),
    ],
)
def test_malformed_lines_get_an_error_line(line: str, problem: str) -> None:
    sim, changer = _sim()
    (answer,) = sim.handle_line(line, 1.0)
    assert answer.startswith("e,")
    assert problem in answer
    assert changer.handled == []
    assert sim.counters.errors == 1


def test_requests_need_master_mode() -> None:
    sim, changer = _sim(master=False)
    assert sim.handle_line("R,08", 0.0) == ["e,master mode is off (send M,1 first)"]
    assert sim.handle_line("R,RESET", 0.0)[0].startswith("e,")
    assert changer.handled == []
    assert changer.power_cycles == 0


def test_adapter_acks_peripheral_data_itself() -> None:
    sim, changer = _sim()
    sim.handle_line("R,08", 0.0)
    assert sim.handle_line("R,0B", 0.0) == [f"p,{JUST_RESET.hex().upper()}"]
    assert changer.acks == [True]
    assert sim.handle_line("R,0B", 0.0) == ["p,ACK"]


def test_sniffer_reports_both_directions_with_timestamps() -> None:
    sim, _ = _sim()
    sim.handle_line("X,1", 0.0)
    sim.handle_line("R,08", 12.34567)
    out = sim.handle_line("R,0B", 12.5)
    master, slave = (parse_sniff(line) for line in out[:2])
    assert (master.data, master.ticks, master.from_master) == (b"\x0b", 125000, True)
    assert (slave.data, slave.from_master) == (JUST_RESET, False)
    assert out[2] == "p,0B"


def test_drop_answers_reports_nack_and_the_peripheral_keeps_its_data() -> None:
    sim, changer = _sim()
    sim.handle_line("R,08", 0.0)
    sim.control("drop_answers", {"count": 2}, 0.0)
    assert sim.handle_line("R,0B", 0.0) == ["p,NACK"]
    assert sim.handle_line("R,0B", 0.0) == ["p,NACK"]
    assert sim.handle_line("R,0B", 0.0) == ["p,0B"]
    assert changer.acks == [False, False, True]
    assert changer.handled.count(b"\x0b") == 3  # the peripheral did act each time


def test_lose_acks_forever_until_cleared() -> None:
    sim, changer = _sim()
    sim.handle_line("R,08", 0.0)
    sim.control("lose_acks", {"count": -1}, 0.0)
    for _ in range(3):
        assert sim.handle_line("R,0B", 0.0) == ["p,0B"]
    sim.control("clear_faults", {}, 0.0)
    sim.handle_line("R,0B", 0.0)
    assert changer.acks == [False, False, False, True]
    assert sim.status()["counters"] == {
        "requests": 5,
        "answers_dropped": 0,
        "acks_lost": 3,
        "errors": 0,
    }


@pytest.mark.parametrize(
    ("action", "args", "problem"),
    [
        ("slow", {"ms": -1}, "'ms' must be a number >= 0.0"),
        ("slow", {}, "'ms' must be a number"),
        ("drop_answers", {"count": "two"}, "'count' must be an integer"),
        ("lose_acks", {"count": True}, "'count' must be an integer"),
        ("explode", {}, "adapter has no action 'explode'"),
    ],
)
def test_control_errors_name_the_problem(
    action: str, args: dict[str, object], problem: str
) -> None:
    sim, _ = _sim()
    with pytest.raises(ValueError, match=problem):
        sim.control(action, args, 0.0)


def test_control_status_and_reset() -> None:
    sim, changer = _sim()
    status = sim.control("slow", {"ms": 30}, 0.0)
    assert status["faults"] == {"slow_ms": 30.0, "drop_answers": 0, "lose_acks": 0}
    assert status["devices"] == ["changer"]
    assert sim.control("reset_bus", {}, 0.0) == {"reset": {"changer": "power_cycle"}}
    assert changer.power_cycles == 1


# --- the byte handler ----------------------------------------------------------------


def test_byte_handler_buffers_partial_lines_and_accepts_crlf() -> None:
    sim, _ = _sim(master=False)
    handler = AdapterByteHandler(sim)
    assert handler(b"M,", 0.0) == b""
    assert handler(b"1\r\nR,0", 0.0) == b"m,ACK\n"
    assert handler(b"8\nV\n", 0.0) == b"p,ACK\nv,4.2.0.0,vendfleet-sim\n"


def test_byte_handler_rejects_binary_and_overlong_lines() -> None:
    sim, changer = _sim()
    handler = AdapterByteHandler(sim)
    assert handler(b"\xff\xfe\n", 0.0).startswith(b"e,line is not ASCII")
    assert handler(b"A" * 300, 0.0).startswith(b"e,line longer than 256")
    assert handler(b"R,08\n", 0.0) == b"p,ACK\n"  # still serving after the garbage
    assert changer.handled == [b"\x08"]


def test_slow_adapter_sleeps_before_answering() -> None:
    sim, _ = _sim()
    naps: list[float] = []
    handler = AdapterByteHandler(sim, sleep=naps.append)
    handler(b"R,08\n", 0.0)
    sim.control("slow", {"ms": 30}, 0.0)
    handler(b"R,0B\n", 0.0)
    assert naps == [0.03]


@settings(max_examples=150)
@given(chunks=st.lists(st.binary(max_size=40), max_size=12))
def test_garbage_never_crashes_the_adapter(chunks: list[bytes]) -> None:
    sim, _ = _sim()
    handler = AdapterByteHandler(sim, sleep=lambda _s: None)
    for chunk in chunks:
        out = handler(chunk, 0.0)
        assert all(line[:2] in (b"m,", b"p,", b"x,", b"v,", b"e,") for line in out.splitlines())
