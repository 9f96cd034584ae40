"""The wire side both framed simulators share, checked on the board and the cabinet."""

from __future__ import annotations

import pytest

from drivers.sim.cabinet import SimCabinet
from drivers.sim.dispenser import SimDispenserBoard
from drivers.sim.framed import FramedSim
from protocols.framed.frames import Frame, FrameDecoder, encode_frame
from protocols.framed.message import FramedMessage

Sim = FramedSim[FramedMessage, FramedMessage]


def _sims() -> list[tuple[Sim, int]]:
    """Each simulator with the CODE of its ACK RESET request (two payload bytes)."""
    return [(SimDispenserBoard(), 0x05), (SimCabinet(), 0x09)]  # type: ignore[list-item]


def _ask(sim: Sim, code: int, payload: bytes, address: int | None = None, seq: int = 7) -> bytes:
    where = sim.address if address is None else address
    return sim.receive(encode_frame(Frame(where, seq, code, payload)), 0.0)


def _answers(sim: Sim, raw: bytes) -> list[tuple[int, FramedMessage]]:
    return [(f.seq, sim.codec.decode_response(f.code, f.payload)) for f in FrameDecoder().feed(raw)]


@pytest.mark.parametrize(("sim", "ack_reset"), _sims(), ids=["dispenser", "cabinet"])
def test_frames_it_cannot_read_are_refused_with_the_shared_codes(sim: Sim, ack_reset: int) -> None:
    answers = _answers(sim, _ask(sim, 0x7E, b""))
    answers += _answers(sim, _ask(sim, ack_reset, b"\x00"))
    answers += _answers(sim, _ask(sim, ack_reset, b"\x00\x00"))
    described = [(seq, a.describe()) for seq, a in answers]
    assert [(seq, d["request_code"], d["error"]) for seq, d in described] == [
        (7, 0x7E, "unknown_command"),
        (7, ack_reset, "bad_length"),
        (7, ack_reset, "stale_boot"),  # boot 0 is not the current boot (1)
    ]


@pytest.mark.parametrize(("sim", "ack_reset"), _sims(), ids=["dispenser", "cabinet"])
def test_acknowledging_the_current_boot_clears_the_reset(sim: Sim, ack_reset: int) -> None:
    assert sim.reset_pending
    [(_, answer)] = _answers(sim, _ask(sim, ack_reset, sim.boot_count.to_bytes(2, "big")))
    assert answer.describe()["boot_count"] == sim.boot_count
    assert not sim.reset_pending


@pytest.mark.parametrize(("sim", "ack_reset"), _sims(), ids=["dispenser", "cabinet"])
def test_silent_to_echoes_other_addresses_and_when_unplugged(sim: Sim, ack_reset: int) -> None:
    payload = sim.boot_count.to_bytes(2, "big")
    assert _ask(sim, ack_reset | 0x80, payload) == b""  # our own answer echoed back
    assert _ask(sim, ack_reset, payload, address=(sim.address + 1) & 0xFF) == b""
    sim.control("unplug", {}, 0.0)
    assert _ask(sim, ack_reset, payload) == b""
    assert sim.reset_pending
    sim.control("plug", {}, 0.0)
    assert _ask(sim, ack_reset, payload) != b""


@pytest.mark.parametrize(("sim", "ack_reset"), _sims(), ids=["dispenser", "cabinet"])
def test_dropped_answers_are_lost_but_the_request_is_served(sim: Sim, ack_reset: int) -> None:
    status = sim.control("drop_answers", {"count": 1}, 0.0)
    assert status["plugged"] is True
    assert _ask(sim, ack_reset, sim.boot_count.to_bytes(2, "big")) == b""
    assert not sim.reset_pending
    assert (sim.counters.requests, sim.counters.answers_dropped) == (1, 1)
    assert sim.control("status", {}, 0.0)["answers_dropped"] == 1


@pytest.mark.parametrize(("sim", "ack_reset"), _sims(), ids=["dispenser", "cabinet"])
def test_a_restart_loses_a_half_received_frame(sim: Sim, ack_reset: int) -> None:
    frame = encode_frame(Frame(sim.address, 1, ack_reset, sim.boot_count.to_bytes(2, "big")))
    assert sim.receive(frame[:4], 0.0) == b""
    sim.control("power_cycle", {}, 0.0)
    assert sim.receive(frame[4:], 0.0) == b""
    assert sim.counters.requests == 0
