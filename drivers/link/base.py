"""The seam between the MDB state machines and the hardware: one transaction at a time.

A link takes a command block (address byte + data, no checksum), gets it onto the
bus, and reports what came back as a :data:`protocols.mdb.wire.Reply`. Whether the
checksum, the ACK to the peripheral and the RET retries happen in our code (native
9-bit UART, in-memory pair) or in an adapter's firmware (Qibixx) is the link's
business; the state machines above never see it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from protocols.mdb.wire import Reply

# MDB's t_response is 5 ms; host-side links add their own latency on top.
DEFAULT_TIMEOUT = 0.05


class LinkError(Exception):
    """The link itself failed (port gone, adapter not answering, bad URL)."""


class MdbLink(abc.ABC):
    """One MDB bus as seen from the VMC."""

    url: str = ""

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def transact(self, block: bytes, timeout: float = DEFAULT_TIMEOUT) -> Reply:
        """Send one command block and return the peripheral's answer (or NoReply)."""

    @abc.abstractmethod
    async def reset_bus(self) -> None:
        """Bus reset: hold the line in break for >= 100 ms, then stay quiet >= 200 ms."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


LinkFactory = Callable[[str], MdbLink]
_FACTORIES: dict[str, LinkFactory] = {}


def register_link(scheme: str, factory: LinkFactory) -> None:
    """Make ``scheme://...`` URLs open links built by ``factory(url)``."""
    _FACTORIES[scheme] = factory


def open_link(url: str) -> MdbLink:
    """Build (not yet open) the link a URL names, e.g. ``qibixx:///dev/ttyACM0``."""
    scheme = urlsplit(url).scheme
    _load_builtin_links()
    try:
        factory = _FACTORIES[scheme]
    except KeyError:
        known = ", ".join(sorted(f"{s}://" for s in _FACTORIES)) or "none"
        raise LinkError(f"unknown MDB link {url!r} (known: {known})") from None
    return factory(url)


def _load_builtin_links() -> None:
    # Imported lazily so that importing the base never drags in pyserial.
    import drivers.link.builtin  # noqa: F401, PLC0415
