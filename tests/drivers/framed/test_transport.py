"""Device URLs and byte pipes shared by the dispenser and cabinet drivers."""

from __future__ import annotations

import pytest

from drivers.framed.kind import DeviceKind
from drivers.framed.transport import (
    MemoryTransport,
    SerialTransport,
    UrlQuery,
    transport_for_url,
)
from drivers.sim.dispenser import SimDispenserBoard
from protocols.dispense.messages import CODEC, BoardStatus, GetStatus
from protocols.framed.frames import Frame, FrameDecoder, encode_frame


class WidgetError(Exception):
    pass


class WidgetSilentError(WidgetError):
    pass


WIDGET = DeviceKind("widget", 0x11, WidgetError, WidgetSilentError)


def _board(query: UrlQuery, address: int) -> SimDispenserBoard:
    return SimDispenserBoard(motors=query.integer("motors", 10), address=address)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "empty widget URL"),
        ("tcp://widget:9", "unknown widget URL 'tcp://widget:9'"),
        ("serial:///dev/ttyS0?baudrate=115200", "baud rate 115200 not supported by the widget"),
        ("serial:///dev/ttyS0?address=x", "address='x' is not an integer"),
        ("serial://", "no device path"),
        ("memory://?motors=0", "bad simulator parameters"),
    ],
)
def test_bad_urls_raise_the_kinds_own_error(url: str, problem: str) -> None:
    with pytest.raises(WidgetError, match=problem):
        transport_for_url(url, WIDGET, _board)


def test_serial_urls_give_the_port_baud_rate_and_address() -> None:
    transport, address = transport_for_url("serial:///dev/ttyS3?baudrate=9600", WIDGET, _board)
    assert isinstance(transport, SerialTransport)
    assert (transport.port, transport.baudrate, address) == ("/dev/ttyS3", 9600, 0x11)
    bare, address = transport_for_url("/dev/pts/4?address=0x21", WIDGET, _board)
    assert isinstance(bare, SerialTransport)
    assert (bare.port, bare.baudrate, address) == ("/dev/pts/4", 19200, 0x21)


def test_a_given_simulator_serves_a_memory_url_as_is() -> None:
    board = SimDispenserBoard(motors=3)
    transport, _ = transport_for_url("memory://?motors=nonsense", WIDGET, _board, board)
    assert isinstance(transport, MemoryTransport)
    assert transport.device is board


def test_url_query_numbers() -> None:
    query = UrlQuery("a=0x10&b=2.5&b=3.5&c=x", WIDGET)
    assert (query.integer("a", 0), query.number("b", 0.0), query.integer("z", 7)) == (16, 3.5, 7)
    with pytest.raises(WidgetError, match="c='x' is not a number"):
        query.number("c", 1.0)


async def test_memory_transport_answers_on_the_loop_and_refuses_when_closed() -> None:
    transport, address = transport_for_url("memory://?address=1", WIDGET, _board)
    with pytest.raises(WidgetError, match="in-memory widget is not open"):
        transport.write(b"")
    await transport.open()
    assert await transport.read(0.0) == b""
    code, payload = CODEC.encode_request(GetStatus())
    transport.write(encode_frame(Frame(address, 5, code, payload)))
    [frame] = FrameDecoder().feed(await transport.read(1.0))
    assert (frame.seq, frame.code) == (5, 0x81)
    await transport.close()
    status = CODEC.decode_response(frame.code, frame.payload)
    assert isinstance(status, BoardStatus)
    assert status.motors == 10  # built by the factory from the URL
