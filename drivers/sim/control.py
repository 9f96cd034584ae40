"""A simulator's control socket: JSON lines over a Unix socket.

Tests, the demo's simulated customers and operators use it to act on simulated
hardware in another process: insert a coin, present a card, jam a motor, unplug a
device. Request: ``{"device": "changer", "action": "insert_coin", "args": {...}}``.
Answer: ``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from typing import Any

from drivers.unix_path import reachable

# (device, action, args) -> result; raise ValueError / KeyError for a bad request.
ControlHandler = Callable[[str, str, dict[str, Any]], dict[str, Any]]


def answer_line(line: bytes, handler: ControlHandler) -> bytes:
    """Handle one request line; never raises on bad input, it answers with the reason."""
    try:
        request = json.loads(line)
        if not isinstance(request, dict):
            raise TypeError("request must be a JSON object")
        device = str(request.get("device", ""))
        action = request.get("action")
        if not isinstance(action, str) or not action:
            raise ValueError("request needs an 'action'")
        args = request.get("args") or {}
        if not isinstance(args, dict):
            raise TypeError("'args' must be an object")
        reply: dict[str, Any] = {"ok": True, "result": handler(device, action, args)}
    except (ValueError, KeyError, TypeError) as exc:
        reply = {"ok": False, "error": str(exc) or type(exc).__name__}
    return (json.dumps(reply) + "\n").encode()


async def serve_control(path: str, handler: ControlHandler) -> asyncio.Server:
    """Listen on a Unix socket at ``path`` (replacing a stale one)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(answer_line(line, handler))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    with reachable(path) as where:
        return await asyncio.start_unix_server(client, path=where)


class ControlClient:
    """Synchronous client for tests and the CLI (one request, one answer)."""

    def __init__(self, path: str, timeout: float = 5.0) -> None:
        self.path = path
        self.timeout = timeout

    def call(self, device: str, action: str, **args: Any) -> dict[str, Any]:
        import socket  # noqa: PLC0415 - only clients need it

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            with reachable(self.path) as where:
                sock.connect(where)
            sock.sendall(
                (json.dumps({"device": device, "action": action, "args": args}) + "\n").encode()
            )
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
        reply = json.loads(buf)
        if not reply.get("ok"):
            raise RuntimeError(f"{device}.{action}: {reply.get('error')}")
        result: dict[str, Any] = reply.get("result", {})
        return result
