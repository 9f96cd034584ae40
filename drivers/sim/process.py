"""The MDB simulator process: an adapter on a pty, a control socket, a fault script.

``vend sim mdb`` runs :func:`run_simulator`. It serves :class:`QibixxAdapterSim`
on a fresh pseudo-terminal (so the controller opens ``qibixx:///dev/pts/N`` as if
it were a USB adapter), answers control requests on a Unix socket, plays the fault
script on the event loop's clock, reports readiness once, and stops when ``stop``
is set (the CLI sets it on SIGTERM / SIGINT), removing its socket and symlink.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from drivers.sim.adapter import AdapterByteHandler, QibixxAdapterSim
from drivers.sim.base import SimBus, SimPeripheral
from drivers.sim.control import serve_control
from drivers.sim.faults import FaultRunner, Step
from drivers.sim.pty import open_pty, serve_pty


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
    check_link_path(link)
    loop = asyncio.get_running_loop()
    adapter = QibixxAdapterSim(SimBus(*devices.values()))
    runner = FaultRunner(script or [], devices, adapter, start=loop.time())
    temp_dir: str | None = None
    if control is None:
        if link is not None:
            control = f"{link}.control"
        else:
            temp_dir = tempfile.mkdtemp(prefix="vend-sim-mdb-")
            control = os.path.join(temp_dir, "control.sock")
    endpoint = open_pty(link)
    server: asyncio.Server | None = None
    try:
        dispatcher = ControlDispatcher(devices, adapter, loop.time)
        try:
            server = await serve_control(control, dispatcher)
        except OSError as exc:
            raise SimulatorError(f"cannot listen on control socket {control}: {exc}") from exc
        tasks = [
            asyncio.create_task(serve_pty(endpoint, AdapterByteHandler(adapter), stop)),
            asyncio.create_task(_play(runner, stop)),
        ]
        on_ready(Ready(endpoint.path, control, link))
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        if server is not None:
            server.close()
            await server.wait_closed()
        with contextlib.suppress(OSError):
            os.unlink(control)
        endpoint.close()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


async def _play(runner: FaultRunner, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while (due := runner.next_time()) is not None and not stop.is_set():
        await asyncio.sleep(max(0.0, due - loop.time()))
        runner.run_due(loop.time())
