"""The front panel's local control socket: JSON lines over a Unix socket.

Keypads, the display, a kiosk screen, the simulated customers and ``vend machine
panel`` all speak it. Requests carry a ``cmd``; every request gets one answer line
``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``. Clients that send
``{"cmd": "watch"}`` then also receive every display update as
``{"event": "display", "message": ..., "credit": ...}``.

Customer commands: ``select {code}``, ``cancel``, ``status``; baskets (automated
stores): ``basket_add {code, quantity?}``, ``basket_remove {code, quantity?}``,
``basket_clear``, ``basket`` (show), ``checkout`` (alias ``basket_pay``): pay the total
once, then the items are dispensed one by one; ``basket`` then lists each item's
outcome (delivered, failed, skipped); smart cabinets: ``cabinet_open`` (open on the
card in session, or on the next card tap), ``cabinet`` (phase and the last session's
settlement); a cabinet-only machine opens on a card tap without ``cabinet_open``.
Service commands (door open only): ``service_open``, ``service_close``,
``fill {code?, count?}``, ``test_vend {code}``, ``cash_collect``, ``tube_fill
{coin_type, count}``, ``tube_payout {coin_type, count}``, ``out_of_service {code,
reason}``, ``in_service {code}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from drivers.unix_path import reachable

PanelHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class PanelError(Exception):
    """A panel request that cannot be carried out; the message goes back to the client."""


class PanelServer:
    def __init__(self, path: Path, handler: PanelHandler) -> None:
        self.path = path
        self._handler = handler
        self._watchers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with reachable(self.path) as where:
            self._server = await asyncio.start_unix_server(self._client, path=where)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for w in list(self._watchers):
            w.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def broadcast(self, event: dict[str, Any]) -> None:
        line = (json.dumps(event, ensure_ascii=False) + "\n").encode()
        for w in list(self._watchers):
            if w.is_closing():
                self._watchers.discard(w)
                continue
            w.write(line)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                reply = await self._answer(line)
                if reply.pop("_watch", False):
                    self._watchers.add(writer)
                writer.write((json.dumps(reply, ensure_ascii=False) + "\n").encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._watchers.discard(writer)
            writer.close()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            return {"ok": False, "error": f"not JSON: {exc.msg}"}
        if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
            return {"ok": False, "error": "a request is an object with a 'cmd' string"}
        if request["cmd"] == "watch":
            return {"ok": True, "_watch": True}
        try:
            return {"ok": True, **await self._handler(request)}
        except PanelError as exc:
            return {"ok": False, "error": str(exc)}


class PanelClient:
    """Async client used by ``vend machine panel`` and the simulated customers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        with reachable(self.path) as where:
            self._reader, self._writer = await asyncio.open_unix_connection(where)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()

    async def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        if self._reader is None or self._writer is None:
            await self.connect()
        assert self._reader is not None
        assert self._writer is not None
        async with self._lock:
            self._writer.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
            await self._writer.drain()
            while True:
                line = await self._reader.readline()
                if not line:
                    raise ConnectionError("panel socket closed")
                reply: dict[str, Any] = json.loads(line)
                if "event" not in reply:  # skip display pushes on a watching connection
                    return reply
