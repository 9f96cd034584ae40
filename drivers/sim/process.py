"""Simulator processes: a device on a pty, a control socket, for MDB a fault script.

``vend sim mdb`` runs :func:`run_simulator`. It serves :class:`QibixxAdapterSim`
on a fresh pseudo-terminal (so the controller opens ``qibixx:///dev/pts/N`` as if
it were a USB adapter), answers control requests on a Unix socket, plays the fault
script on the event loop's clock, reports readiness once, and stops when ``stop``
is set (the CLI sets it on SIGTERM / SIGINT), removing its socket and symlink.
``vend sim dispenser`` and ``vend sim cabinet`` run :func:`run_device_simulator`,
the same for one framed device that speaks its own protocol on the pty.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from drivers.sim.adapter import AdapterByteHandler, QibixxAdapterSim
from drivers.sim.base import SimBus, SimPeripheral
from drivers.sim.control import ControlHandler, serve_control
from drivers.sim.faults import FaultRunner, Step
from drivers.sim.pty import PtyEndpoint, open_pty, serve_pty


class SimulatorError(Exception):
    """The simulator cannot start as asked (bad path, bad script)."""


@dataclass(frozen=True, slots=True)
class Ready:
    """Where the simulator can be reached; printed once when it is up."""

    device: str
    control: str
    link: str | None

    def as_json(self) -> dict[str, str]:
        out = {"device": self.device, "control": self.control}
        if self.link:
            out["link"] = self.link
        return out


class ControlDispatcher:
    """Routes control requests to the named peripherals and the adapter."""

    def __init__(
        self,
        devices: Mapping[str, SimPeripheral],
        adapter: QibixxAdapterSim,
        clock: Callable[[], float],
    ) -> None:
        self.devices = devices
        self.adapter = adapter
        self.clock = clock

    def __call__(self, device: str, action: str, args: dict[str, Any]) -> dict[str, Any]:
        now = self.clock()
        if device == "adapter":
            return self.adapter.control(action, args, now)
        p = self.devices.get(device)
        if p is None:
            known = ", ".join(["adapter", *sorted(self.devices)])
            raise ValueError(f"no device {device!r} (known: {known})")
        if action == "status":
            return {"plugged": p.plugged, **p.status()}
        try:
            return p.control(action, args, now)
        except ValueError:
            # Plugging is a property of every simulated device, even one whose firmware
            # model has no such action.
            if action in ("unplug", "plug"):
                p.plugged = action == "plug"
                return {"plugged": p.plugged}
            raise


def check_link_path(link: str | None) -> None:
    """Refuse to replace anything but a stale symlink, and need an existing folder."""
    if link is None:
        return
    if os.path.lexists(link) and not os.path.islink(link):
        raise SimulatorError(f"--link {link} exists and is not a symlink; refusing to replace it")
    folder = os.path.dirname(os.path.abspath(link))
    if not os.path.isdir(folder):
        raise SimulatorError(f"--link {link}: folder {folder} does not exist")


class ControlledDevice(Protocol):
    """A simulated device with its own wire protocol and control actions."""

    def receive(self, data: bytes, now: float) -> bytes: ...

    def control(self, action: str, args: dict[str, object], now: float) -> dict[str, object]: ...


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, for ``stop`` (call it inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


@contextlib.asynccontextmanager
async def _serving(
    link: str | None, control: str | None, handler: ControlHandler, name: str
) -> AsyncIterator[tuple[PtyEndpoint, str]]:
    """A fresh pty and a control socket, both closed and removed on the way out.

    Without ``control`` the socket goes next to ``link``, or into a temporary folder.
    """
    check_link_path(link)
    temp_dir: str | None = None
    if control is None:
        if link is not None:
            control = f"{link}.control"
        else:
            temp_dir = tempfile.mkdtemp(prefix=f"vend-sim-{name}-")
            control = os.path.join(temp_dir, "control.sock")
    endpoint = open_pty(link)
    server: asyncio.Server | None = None
    try:
        try:
            server = await serve_control(control, handler)
        except OSError as exc:
            raise SimulatorError(f"cannot listen on control socket {control}: {exc}") from exc
        yield endpoint, control
    finally:
        if server is not None:
            server.close()
            await server.wait_closed()
        with contextlib.suppress(OSError):
            os.unlink(control)
        endpoint.close()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


async def run_simulator(
    devices: Mapping[str, SimPeripheral],
    *,
    stop: asyncio.Event,
    on_ready: Callable[[Ready], None],
    link: str | None = None,
    control: str | None = None,
    script: list[Step] | None = None,
) -> None:
    """Serve until ``stop`` is set; everything opened here is closed and removed."""
    loop = asyncio.get_running_loop()
    adapter = QibixxAdapterSim(SimBus(*devices.values()))
    runner = FaultRunner(script or [], devices, adapter, start=loop.time())
    dispatcher = ControlDispatcher(devices, adapter, loop.time)
    async with _serving(link, control, dispatcher, "mdb") as (endpoint, socket_path):
        tasks = [
            asyncio.create_task(serve_pty(endpoint, AdapterByteHandler(adapter), stop)),
            asyncio.create_task(_play(runner, stop)),
        ]
        on_ready(Ready(endpoint.path, socket_path, link))
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def run_device_simulator(
    name: str,
    device: ControlledDevice,
    *,
    stop: asyncio.Event,
    on_ready: Callable[[Ready], None],
    link: str | None = None,
    control: str | None = None,
) -> None:
    """Serve one device until ``stop`` is set; control requests name it ``name`` (or "")."""
    loop = asyncio.get_running_loop()

    def handle(target: str, action: str, args: dict[str, Any]) -> dict[str, Any]:
        if target not in (name, ""):
            raise ValueError(f"no device {target!r} (known: {name})")
        return device.control(action, args, loop.time())

    async with _serving(link, control, handle, name) as (endpoint, socket_path):
        pty_task = asyncio.create_task(serve_pty(endpoint, device.receive, stop))
        on_ready(Ready(endpoint.path, socket_path, link))
        await stop.wait()
        await pty_task


async def _play(runner: FaultRunner, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while (due := runner.next_time()) is not None and not stop.is_set():
        await asyncio.sleep(max(0.0, due - loop.time()))
        runner.run_due(loop.time())
