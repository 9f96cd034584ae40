"""Serve a simulated device on a pseudo-terminal, so real serial code can talk to it.

The simulator process owns the pty master; the slave path (``/dev/pts/N``) is what
the controller opens as if it were a USB adapter or an RS-485 port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
import tty
from collections.abc import Callable
from dataclasses import dataclass, field

# Feed bytes from the controller, get bytes to send back. ``now`` is monotonic seconds.
ByteHandler = Callable[[bytes, float], bytes]


@dataclass
class PtyEndpoint:
    """An open pseudo-terminal pair: we keep ``master_fd``; others open ``path``."""

    master_fd: int
    slave_fd: int
    path: str
    link_path: str | None = None
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for fd in (self.master_fd, self.slave_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.link_path:
            with contextlib.suppress(OSError):
                os.unlink(self.link_path)


def open_pty(link_path: str | None = None) -> PtyEndpoint:
    """Open a raw pty pair; optionally publish the slave under a stable symlink."""
    master_fd, slave_fd = os.openpty()
    tty.setraw(master_fd, termios.TCSANOW)
    tty.setraw(slave_fd, termios.TCSANOW)
    path = os.ttyname(slave_fd)
    if link_path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link_path)
        os.symlink(path, link_path)
    return PtyEndpoint(master_fd, slave_fd, path, link_path)


async def serve_pty(endpoint: PtyEndpoint, handler: ByteHandler, stop: asyncio.Event) -> None:
    """Answer whatever arrives on the pty until ``stop`` is set.

    Keeping our copy of the slave fd open means the master never sees EOF/EIO when
    the controller closes and reopens the port, which real adapters also survive.
    """
    loop = asyncio.get_running_loop()
    os.set_blocking(endpoint.master_fd, False)
    incoming: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(endpoint.master_fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            incoming.put_nowait(data)

    loop.add_reader(endpoint.master_fd, readable)
    try:
        while not stop.is_set():
            getter = asyncio.ensure_future(incoming.get())
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            stopper.cancel()
            answer = handler(getter.result(), loop.time())
            if answer:
                _write_all(endpoint.master_fd, answer)
    finally:
        loop.remove_reader(endpoint.master_fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            continue
        view = view[n:]
