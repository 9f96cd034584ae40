"""Registers the link backends that ship with vendfleet.

* ``memory://`` / ``memory://<name>`` -- the in-memory link to a simulated bus
  registered with :func:`drivers.link.memory.register_memory_bus` (a default bus
  with changer, bill validator and cashless reader #1 if none is registered);
* ``qibixx:///dev/ttyACM0[?baudrate=115200]`` -- a Qibixx MDB-USB / Pi Hat adapter;
* ``ninebit:///dev/ttyAMA0`` -- a native UART with stick parity for the mode bit.

Each factory imports its backend lazily, so listing the schemes costs nothing and
pyserial loads only when a serial link is built.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from drivers.link.base import LinkError, MdbLink, register_link


def _memory(url: str) -> MdbLink:
    from drivers.link.memory import MemoryLink, memory_bus  # noqa: PLC0415

    parts = urlsplit(url)
    name = parts.netloc or parts.path.strip("/")
    if parts.query or (parts.netloc and parts.path.strip("/")):
        raise LinkError(f"bad memory link URL {url!r} (expected memory:// or memory://<name>)")
    return MemoryLink(memory_bus(name), url=url)


def _qibixx(url: str) -> MdbLink:
    from drivers.link.qibixx import QibixxLink  # noqa: PLC0415

    return QibixxLink(url)


def _ninebit(url: str) -> MdbLink:
    from drivers.link.ninebit import NineBitLink  # noqa: PLC0415

    return NineBitLink(url)


register_link("memory", _memory)
register_link("qibixx", _qibixx)
register_link("ninebit", _ninebit)
