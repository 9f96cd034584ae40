"""The native 9-bit link without hardware: planning, termios flags, and the transaction
logic against a port double that plays a peripheral through the real wire code."""

from __future__ import annotations

import os
import termios

import pytest

from drivers.link.base import LinkError, open_link
from drivers.link.ninebit import (
    CMSPAR,
    NineBitLink,
    Segment,
    plan_command,
    plan_response,
    receive_iflag,
    run_transaction,
    stick_parity_cflag,
)
from drivers.link.parmrk import encode_parmrk
from drivers.sim.base import Silence, SimBus
from protocols.mdb.wire import (
    ACK,
    MODE_BIT,
    NAK,
    RET,
    Ack,
    CommandReader,
    CommandReceived,
    Data,
    NoReply,
    VmcResponse,
    encode_answer,
)
from tests.drivers.link.fakes import JUST_RESET, FakeChanger


class PeripheralPort:
    """A UART double: what the VMC writes reaches a simulated bus as 9-bit words."""

    def __init__(self, bus: SimBus, corrupt_answers: int = 0, nak: bool = False) -> None:
        self.bus = bus
        self.reader = CommandReader(bus.command_length)
        self.segments: list[Segment] = []
        self.outbox = b""
        self.last_answer = b""
        self.corrupt_answers = corrupt_answers
        self.nak = nak
        self.breaks = 0
        self.closed = False

    def send(self, segment: Segment) -> None:
        self.segments.append(segment)
        words = [(MODE_BIT if segment.mode else 0) | b for b in segment.data]
        for event in self.reader.feed(words):
            if isinstance(event, CommandReceived):
                self._answer(event.block)
            elif isinstance(event, VmcResponse):
                if event.code == RET:
                    self._emit(self.last_answer)
                else:
                    self.bus.acked(event.code == ACK)

    def _answer(self, block: bytes) -> None:
        if self.nak:
            self.outbox += encode_parmrk([MODE_BIT | NAK])
            return
        answer = self.bus.handle(block, 0.0)
        if isinstance(answer, Silence):
            return
        self.last_answer = answer.payload if isinstance(answer, Data) else b""
        self._emit(self.last_answer)

    def _emit(self, payload: bytes) -> None:
        words = list(encode_answer(payload))
        if self.corrupt_answers:
            self.corrupt_answers -= 1
            words[-1] ^= 0x01  # wrong checksum
        self.outbox += encode_parmrk(words)

    def read(self, timeout: float) -> bytes:
        out, self.outbox = self.outbox[:3], self.outbox[3:]  # dribble, to exercise reassembly
        return out

    def discard_input(self) -> None:
        self.outbox = b""

    def send_break(self, hold: float, settle: float) -> None:
        self.breaks += 1

    def close(self) -> None:
        self.closed = True


def test_plan_command_puts_the_address_in_mark_and_the_rest_in_space() -> None:
    assert plan_command(b"\x0b") == [
        Segment(mode=True, data=b"\x0b"),
        Segment(mode=False, data=b"\x0b"),
    ]
    assert plan_command(b"\x14\x01") == [
        Segment(mode=True, data=b"\x14"),
        Segment(mode=False, data=b"\x01\x15"),
    ]


def test_plan_response_is_one_space_byte_and_refuses_other_codes() -> None:
    assert plan_response(RET) == Segment(mode=False, data=b"\xaa")
    with pytest.raises(ValueError, match="not ACK, RET or NAK"):
        plan_response(0x42)


def test_receive_flags_mark_parity_errors_and_ignore_breaks() -> None:
    iflag = receive_iflag(termios.IGNPAR | termios.ISTRIP | termios.ICRNL | termios.IXON)
    assert iflag & termios.PARMRK
    assert iflag & termios.INPCK
    assert iflag & termios.IGNBRK
    assert not iflag & (termios.IGNPAR | termios.ISTRIP | termios.ICRNL | termios.IXON)


def test_stick_parity_flags() -> None:
    mark = stick_parity_cflag(termios.CS8, mark=True)
    space = stick_parity_cflag(mark, mark=False)
    assert (
        mark & (termios.PARENB | CMSPAR | termios.PARODD)
        == termios.PARENB | CMSPAR | termios.PARODD
    )
    assert space & (termios.PARENB | CMSPAR | termios.PARODD) == termios.PARENB | CMSPAR


def test_transaction_acks_data_in_space_parity() -> None:
    changer = FakeChanger()
    port = PeripheralPort(SimBus(changer))
    assert run_transaction(port, b"\x08", 0.05) == Ack()
    assert run_transaction(port, b"\x0b", 0.05) == Data(JUST_RESET)
    assert port.segments[-1] == Segment(mode=False, data=bytes([ACK]))
    assert changer.acks == [True]


def test_transaction_rets_a_bad_checksum_then_naks_at_the_limit() -> None:
    changer = FakeChanger()
    port = PeripheralPort(SimBus(changer))
    run_transaction(port, b"\x08", 0.05)
    port.corrupt_answers = 1
    assert run_transaction(port, b"\x0b", 0.05, ret_limit=2) == Data(JUST_RESET)
    assert Segment(mode=False, data=bytes([RET])) in port.segments
    port.corrupt_answers = 3
    changer.pending.append(b"\x41\x05")
    assert run_transaction(port, b"\x0b", 0.05, ret_limit=2) == NoReply("checksum")
    assert port.segments[-1] == Segment(mode=False, data=bytes([NAK]))
    assert changer.acks[-1] is False


def test_transaction_reports_silence_and_peripheral_nak() -> None:
    port = PeripheralPort(SimBus(FakeChanger()))
    assert run_transaction(port, b"\x33", 0.01) == NoReply("timeout")
    assert run_transaction(PeripheralPort(SimBus(FakeChanger()), nak=True), b"\x0b", 0.05) == (
        NoReply("nak")
    )


async def test_link_runs_transactions_on_its_own_thread_with_a_port_factory() -> None:
    changer = FakeChanger()
    ports: list[PeripheralPort] = []

    def factory(path: str) -> PeripheralPort:
        assert path == "/dev/ttyAMA0"
        ports.append(PeripheralPort(SimBus(changer)))
        return ports[-1]

    link = NineBitLink("ninebit:///dev/ttyAMA0", port_factory=factory)
    async with link:
        assert await link.transact(b"\x08") == Ack()
        assert await link.transact(b"\x0b") == Data(JUST_RESET)
        await link.reset_bus()
    assert ports[0].breaks == 1
    assert ports[0].closed
    with pytest.raises(LinkError, match="not open"):
        await link.transact(b"\x0b")


async def test_missing_port_is_a_link_error_naming_it() -> None:
    link = open_link("ninebit:///dev/does-not-exist-mdb")
    with pytest.raises(LinkError, match="does-not-exist-mdb"):
        await link.open()


@pytest.mark.parametrize("url", ["ninebit://ttyAMA0", "ninebit://", "ninebit://host/dev/x"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(LinkError, match="expected ninebit:///dev/ttyAMA0"):
        NineBitLink(url)


@pytest.mark.hardware
@pytest.mark.skipif(
    not os.environ.get("VEND_MDB_HARDWARE"), reason="set VEND_MDB_HARDWARE=/dev/tty..."
)
async def test_real_uart_resets_and_polls_the_changer() -> None:
    port = os.environ["VEND_MDB_HARDWARE"]
    async with NineBitLink(f"ninebit://{port}") as link:
        await link.reset_bus()
        assert await link.transact(b"\x08", timeout=0.1) == Ack()
        assert isinstance(await link.transact(b"\x0b", timeout=0.1), Ack | Data)
