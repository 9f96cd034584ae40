"""Control and panel sockets in folders deeper than AF_UNIX's 107-byte path limit."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from controller.panel import PanelClient, PanelServer
from drivers.sim.control import ControlClient, serve_control
from drivers.unix_path import MAX_PATH_BYTES, reachable


def _deep(tmp_path: Path) -> Path:
    folder = tmp_path / ("d" * 60) / ("e" * 60)
    folder.mkdir(parents=True)
    return folder


def test_a_short_path_is_used_as_it_is(tmp_path: Path) -> None:
    with reachable(tmp_path / "s.sock") as where:
        assert where == str(tmp_path / "s.sock")


async def test_control_socket_in_a_deep_folder_answers(tmp_path: Path) -> None:
    path = str(_deep(tmp_path) / "board.control")
    assert len(os.fsencode(path)) > MAX_PATH_BYTES

    def handler(device: str, action: str, args: dict[str, Any]) -> dict[str, Any]:
        return {"device": device, "action": action, "args": args}

    server = await serve_control(path, handler)
    try:
        assert Path(path).is_socket()  # where other processes look for it
        answer = await asyncio.to_thread(ControlClient(path).call, "board", "jam", motor=3)
    finally:
        server.close()
        await server.wait_closed()
    assert answer == {"device": "board", "action": "jam", "args": {"motor": 3}}


async def test_panel_socket_in_a_deep_folder_answers(tmp_path: Path) -> None:
    path = _deep(tmp_path) / "panel.sock"

    async def handler(request: dict[str, Any]) -> dict[str, Any]:
        return {"echo": request["cmd"]}

    server = PanelServer(path, handler)
    await server.start()
    client = PanelClient(path)
    try:
        answer = await client.call("status")
    finally:
        await client.close()
        await server.close()
    assert answer == {"ok": True, "echo": "status"}
