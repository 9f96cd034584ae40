from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.link.base import LinkError, open_link
from drivers.link.fault_hook import FaultHook, Transmission
from drivers.link.memory import MemoryLink, register_memory_bus, unregister_memory_bus
from drivers.sim.base import SimBus
from protocols.mdb.errors import FrameError
from protocols.mdb.wire import Ack, Data, NoReply, Reply
from tests.drivers.link.fakes import JUST_RESET, FakeChanger, PlainPeripheral

RESET, POLL = b"\x08", b"\x0b"
COIN_TYPE = b"\x0c\x00\x0f\x00\x0f"


async def _link(
    faults: FaultHook | None = None, ret_limit: int = 2
) -> tuple[MemoryLink, FakeChanger]:
    changer = FakeChanger()
    link = MemoryLink(SimBus(changer), faults=faults, clock=lambda: 0.0, ret_limit=ret_limit)
    await link.open()
    return link, changer


async def test_clean_reset_poll_and_ack() -> None:
    link, changer = await _link()
    assert await link.transact(RESET) == Ack()
    assert await link.transact(POLL) == Data(JUST_RESET)
    assert changer.acks == [True]
    assert await link.transact(POLL) == Ack()
    assert await link.transact(COIN_TYPE) == Ack()
    assert changer.enabled == b"\x00\x0f\x00\x0f"


async def test_unknown_address_and_unplugged_device_are_silent() -> None:
    link, changer = await _link()
    assert await link.transact(b"\x33") == NoReply("timeout")
    changer.plugged = False
    assert await link.transact(POLL) == NoReply("timeout")
    assert changer.handled == []


async def test_transact_needs_an_open_link_and_a_valid_block() -> None:
    link = MemoryLink(SimBus(FakeChanger()))
    with pytest.raises(LinkError, match="not open"):
        await link.transact(POLL)
    await link.open()
    with pytest.raises(FrameError):
        await link.transact(b"")
    with pytest.raises(FrameError):
        await link.transact(bytes(40))


async def test_corrupt_command_gets_silence_then_the_retry_works() -> None:
    link, changer = await _link(FaultHook().corrupt("to_peripheral", times=1, offset=0, xor=0x04))
    assert await link.transact(RESET) == NoReply("timeout")
    assert changer.handled == []
    assert await link.transact(RESET) == Ack()
    assert changer.handled == [RESET]


async def test_corrupt_answer_is_recovered_by_ret() -> None:
    link, changer = await _link()
    await link.transact(RESET)
    link.faults = faults = FaultHook().corrupt("to_vmc", times=1, offset=0)
    assert await link.transact(POLL) == Data(JUST_RESET)
    assert changer.handled.count(POLL) == 1  # RET repeats the answer, not the command
    assert changer.acks == [True]
    assert any("corrupted" in entry for entry in faults.log)


async def test_answer_corrupt_beyond_ret_limit_is_a_checksum_failure_and_data_is_kept() -> None:
    link, changer = await _link(ret_limit=2)
    await link.transact(RESET)
    link.faults = FaultHook().corrupt("to_vmc", times=3, offset=0)
    assert await link.transact(POLL) == NoReply("checksum")
    assert changer.acks == [False]
    # The peripheral kept its unACKed data and sends it again on the next POLL.
    assert await link.transact(POLL) == Data(JUST_RESET)
    assert changer.acks == [False, True]


async def test_ret_limit_zero_gives_up_at_once() -> None:
    link, _changer = await _link(ret_limit=0)
    await link.transact(RESET)
    link.faults = FaultHook().corrupt("to_vmc", times=1, offset=0)
    assert await link.transact(POLL) == NoReply("checksum")
    assert await link.transact(POLL) == Data(JUST_RESET)


async def test_lost_ret_means_no_repeat_and_a_timeout() -> None:
    link, changer = await _link()
    await link.transact(RESET)
    link.faults = FaultHook().corrupt("to_vmc", times=1, offset=0)
    link.faults.drop("to_peripheral", times=1, only=Transmission.RESPONSE)
    assert await link.transact(POLL) == NoReply("timeout")
    assert changer.acks == [False]


async def test_lost_ack_makes_the_peripheral_resend() -> None:
    link, changer = await _link(FaultHook().lose_acks(times=1))
    await link.transact(RESET)
    assert await link.transact(POLL) == Data(JUST_RESET)
    assert changer.acks == [False]
    assert await link.transact(POLL) == Data(JUST_RESET)  # the duplicate a VMC must tolerate
    assert changer.acks == [False, True]
    assert await link.transact(POLL) == Ack()


async def test_corrupted_ack_word_counts_as_not_acked() -> None:
    faults = FaultHook().corrupt("to_peripheral", times=1, xor=0x55, only=Transmission.RESPONSE)
    link, changer = await _link(faults)
    await link.transact(RESET)
    assert await link.transact(POLL) == Data(JUST_RESET)  # the VMC got it, but its ACK broke
    assert changer.acks == [False]
    assert await link.transact(POLL) == Data(JUST_RESET)
    assert changer.acks == [False, True]


async def test_dropped_answer_is_a_timeout_and_data_is_kept() -> None:
    link, changer = await _link()
    await link.transact(RESET)
    link.faults = FaultHook().drop("to_vmc", times=1)
    assert await link.transact(POLL) == NoReply("timeout")
    assert changer.acks == [False]
    assert await link.transact(POLL) == Data(JUST_RESET)


async def test_dropped_command_never_reaches_the_peripheral() -> None:
    link, changer = await _link(FaultHook().drop("to_peripheral", times=1))
    assert await link.transact(RESET) == NoReply("timeout")
    assert changer.handled == []


async def test_late_answer_times_out_but_a_short_delay_does_not() -> None:
    link, changer = await _link(FaultHook().delay(0.01, "to_vmc", times=1))
    await link.transact(RESET, timeout=0.05)
    link.faults = FaultHook().delay(0.2, "to_vmc", times=1)
    assert await link.transact(POLL, timeout=0.05) == NoReply("timeout")
    assert changer.acks == [False]
    assert await link.transact(POLL, timeout=0.05) == Data(JUST_RESET)


async def test_late_command_is_acted_on_but_the_vmc_has_given_up() -> None:
    link, changer = await _link(FaultHook().delay(0.2, "to_peripheral", times=1))
    assert await link.transact(RESET, timeout=0.05) == NoReply("timeout")
    assert changer.handled == [RESET]


async def test_split_chunks_everywhere_change_nothing() -> None:
    link, changer = await _link(FaultHook(seed=7).split())
    assert await link.transact(RESET) == Ack()
    assert await link.transact(POLL) == Data(JUST_RESET)
    assert await link.transact(COIN_TYPE) == Ack()
    assert changer.acks == [True]


async def test_reset_bus_power_cycles_the_peripherals() -> None:
    changer, plain = FakeChanger(), PlainPeripheral()
    link = MemoryLink(SimBus(changer, plain))
    await link.open()
    await link.reset_bus()
    assert changer.power_cycles == 1
    assert plain.handled == [b"\x10"]  # no power_cycle action: its RESET command instead
    assert await link.transact(POLL) == Data(JUST_RESET)


async def test_open_link_finds_a_registered_memory_bus() -> None:
    changer = FakeChanger()
    register_memory_bus("unit-test-bus", SimBus(changer))
    try:
        async with open_link("memory://unit-test-bus") as link:
            assert await link.transact(RESET) == Ack()
        assert changer.handled == [RESET]
    finally:
        unregister_memory_bus("unit-test-bus")


def test_open_link_rejects_unknown_schemes_and_bad_memory_urls() -> None:
    with pytest.raises(LinkError, match=r"memory://.*ninebit://.*qibixx://"):
        open_link("carrier-pigeon://loft")
    with pytest.raises(LinkError, match="memory://<name>"):
        open_link("memory://a/b")


def test_fault_hook_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="probability"):
        FaultHook().split(probability=1.5)
    with pytest.raises(ValueError, match="negative"):
        FaultHook().delay(-1.0)
    with pytest.raises(ValueError, match="xor"):
        FaultHook().corrupt(xor=0)
    with pytest.raises(ValueError, match="times"):
        FaultHook().drop(times=-2)


def test_fault_hook_is_reproducible_and_times_runs_out() -> None:
    def chunks(seed: int) -> list[list[bytes]]:
        hook = FaultHook(seed).split(times=3)
        return [
            [c.data for c in hook.carry(bytes(range(12)), "to_vmc", Transmission.ANSWER)]
            for _ in range(4)
        ]

    first = chunks(11)
    assert first == chunks(11)
    assert all(b"".join(c) == bytes(range(12)) for c in first)
    assert first[3] == [bytes(range(12))]  # the fourth transmission is not split any more


# --- properties -------------------------------------------------------------------

SCRIPT = [RESET, POLL, POLL, COIN_TYPE, b"\x33", POLL]


async def _run_script(faults: FaultHook | None) -> tuple[list[Reply], FakeChanger]:
    link, changer = await _link(faults)
    replies = [await link.transact(block) for block in SCRIPT]
    changer.control("deposit", {"type": 2}, 0.0)
    replies += [await link.transact(POLL), await link.transact(POLL)]
    return replies, changer


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_any_chunking_gives_the_same_replies(seed: int) -> None:
    clean, clean_changer = asyncio.run(_run_script(None))
    split, split_changer = asyncio.run(_run_script(FaultHook(seed).split()))
    assert split == clean
    assert split_changer.acks == clean_changer.acks


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    p_corrupt=st.floats(0, 0.5),
    p_drop=st.floats(0, 0.3),
    p_ack=st.floats(0, 0.5),
)
def test_faults_never_invent_data(seed: int, p_corrupt: float, p_drop: float, p_ack: float) -> None:
    faults = FaultHook(seed).split(probability=0.5).corrupt(probability=p_corrupt)
    faults.drop(probability=p_drop).lose_acks(probability=p_ack)
    replies, changer = asyncio.run(_run_script(faults))
    for reply in replies:
        assert isinstance(reply, Ack | Data | NoReply)
        if isinstance(reply, Data):
            assert reply.payload in changer.sent, (reply, faults.log)
        if isinstance(reply, NoReply):
            assert reply.reason in {"timeout", "checksum", "nak"}
