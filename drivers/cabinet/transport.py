"""Byte pipes to a cabinet: a serial port, or the simulator in this process.

``serial:///dev/ttyUSB0?baudrate=9600&address=32``, a bare ``/dev/pts/3`` (19200
baud, address 0x20), or ``memory://?shelves=4&count=5&rfid=1`` for a
:class:`SimCabinet` answering in-process (tests and demos without a pty). The pipes
themselves are the shared ones of :mod:`drivers.framed.transport`.
"""

from __future__ import annotations

from drivers.cabinet.errors import CabinetDriverError, CabinetNotAnsweringError
from drivers.framed import transport as framed
from drivers.framed.kind import DeviceKind
from drivers.framed.transport import Transport, UrlQuery
from drivers.sim.cabinet import SimCabinet, stocked_shelves
from protocols.cabinet.client import DEFAULT_ADDRESS

CABINET = DeviceKind("cabinet", DEFAULT_ADDRESS, CabinetDriverError, CabinetNotAnsweringError)


def _simulator(query: UrlQuery, address: int) -> SimCabinet:
    shelves = stocked_shelves(
        query.integer("shelves", 4), query.integer("count", 5), rfid=bool(query.integer("rfid", 0))
    )
    return SimCabinet(shelves, address=address)


def transport_for_url(url: str, cabinet: SimCabinet | None = None) -> tuple[Transport, int]:
    """The transport a URL names, and the cabinet address it asks for (default 0x20)."""
    return framed.transport_for_url(url, CABINET, _simulator, cabinet)
