"""Byte pipes to a dispensing board: a serial port, or the simulator in this process.

``serial:///dev/ttyUSB0?baudrate=9600``, a bare ``/dev/pts/3`` (19200 baud), or
``memory://?motors=60&stock=5&vend_time=0.05`` for a :class:`SimDispenserBoard`
answering in-process (tests and demos without a pty). The pipes themselves are
the shared ones of :mod:`drivers.framed.transport`.
"""

from __future__ import annotations

from drivers.dispenser.errors import BoardNotAnsweringError, DispenserError
from drivers.framed import transport as framed
from drivers.framed.kind import DeviceKind
from drivers.framed.transport import Transport, UrlQuery
from drivers.sim.dispenser import SimDispenserBoard

DISPENSER = DeviceKind("dispenser", 0x01, DispenserError, BoardNotAnsweringError)


def _simulator(query: UrlQuery, address: int) -> SimDispenserBoard:
    return SimDispenserBoard(
        motors=query.integer("motors", 60),
        stock=query.integer("stock", 5),
        vend_time=query.number("vend_time", 1.5),
        address=address,
    )


def transport_for_url(url: str, board: SimDispenserBoard | None = None) -> tuple[Transport, int]:
    """The transport a URL names, and the board address it asks for (default 1)."""
    return framed.transport_for_url(url, DISPENSER, _simulator, board)
