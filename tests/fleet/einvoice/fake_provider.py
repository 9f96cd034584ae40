"""A real HTTP e-invoice provider for tests: asyncio on a free loopback port.

It speaks the contract of ``fleet.einvoice.http_provider`` and can misbehave on demand,
per idempotency key (``plan``) or for every request (``default``):

* ``accept`` — store the document (once per idempotency key) and answer 201 with its
  reference; a key it already holds gets 409 with the existing reference;
* ``fail`` — answer 500 and store nothing;
* ``throttle`` — answer 429 with ``Retry-After: 1``;
* ``hang`` — read the request, then say nothing for ``hang_seconds`` and close;
* ``drop`` — store the document, then close the connection without answering (the
  answer is lost on the way back);
* ``reject`` — answer 422 (a permanent refusal);
* ``garbage`` — answer with something that is not HTTP;
* ``chunked`` — like ``accept``, with a chunked answer body.

``records`` counts what the provider stored per receipt (the ``X-Receipt-Key`` header):
a client that changed its idempotency key between retries would show up as 2 there.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from typing import Self
from urllib.parse import unquote

BEHAVIOURS = frozenset(
    {"accept", "fail", "throttle", "hang", "drop", "reject", "garbage", "chunked"}
)


@dataclass(frozen=True)
class Stored:
    ref: str
    idempotency_key: str
    receipt_key: str
    kind: str
    document: bytes
    original_key: str | None
    original_ref: str | None


class FakeProvider:
    def __init__(self, *, hang_seconds: float = 3.0) -> None:
        self.hang_seconds = hang_seconds
        self.default = "accept"
        self.stored: dict[str, Stored] = {}
        self.records: Counter[str] = Counter()
        self.seen: list[tuple[str, str]] = []  # (idempotency key, behaviour) per request
        self._plans: dict[str, deque[str]] = defaultdict(deque)
        self._refs = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    def plan(self, idempotency_key: str, *behaviours: str) -> None:
        unknown = set(behaviours) - BEHAVIOURS
        assert not unknown, f"unknown behaviours {unknown}"
        self._plans[idempotency_key].extend(behaviours)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/api"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # so closing the server also ends a hanging answer
        task.add_done_callback(self._tasks.discard)
        try:
            request_line, headers, body = await _read_request(reader)
            await self._respond(request_line, headers, body, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _respond(
        self,
        request_line: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> None:
        if not request_line.startswith("POST /api/receipts "):
            await _answer(writer, 404, {"error": f"no route for {request_line}"})
            return
        key = headers.get("idempotency-key", "")
        if not key:
            await _answer(writer, 400, {"error": "Idempotency-Key is required"})
            return
        plan = self._plans.get(key)
        behaviour = plan.popleft() if plan else self.default
        self.seen.append((key, behaviour))
        if behaviour == "fail":
            await _answer(writer, 500, {"error": "provider database unavailable"})
        elif behaviour == "throttle":
            await _answer(writer, 429, {"error": "slow down"}, extra={"Retry-After": "1"})
        elif behaviour == "hang":
            await asyncio.sleep(self.hang_seconds)
        elif behaviour == "drop":
            self._store(key, headers, body)
        elif behaviour == "reject":
            await _answer(writer, 422, {"error": "MST 0000000000 is not a registered seller"})
        elif behaviour == "garbage":
            writer.write(b"SMTP READY\r\n\r\n")
            await writer.drain()
        else:
            status = 409 if key in self.stored else 201
            stored = self._store(key, headers, body)
            await _answer(writer, status, {"reference": stored.ref}, chunked=behaviour == "chunked")

    def _store(self, key: str, headers: dict[str, str], body: bytes) -> Stored:
        if key not in self.stored:
            original = headers.get("x-original-key")
            original_ref = headers.get("x-original-reference")
            stored = Stored(
                ref=f"PRV-{next(self._refs):06d}",
                idempotency_key=key,
                receipt_key=unquote(headers.get("x-receipt-key", "")),
                kind=headers.get("x-receipt-kind", ""),
                document=body,
                original_key=unquote(original) if original else None,
                original_ref=unquote(original_ref) if original_ref else None,
            )
            self.stored[key] = stored
            self.records[stored.receipt_key] += 1
        return self.stored[key]


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    request_line = (await reader.readline()).decode("latin-1").strip()
    headers: dict[str, str] = {}
    while True:
        line = (await reader.readline()).decode("latin-1")
        if line in {"\r\n", "\n", ""}:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return request_line, headers, body


async def _answer(
    writer: asyncio.StreamWriter,
    status: int,
    payload: dict[str, str],
    *,
    extra: dict[str, str] | None = None,
    chunked: bool = False,
) -> None:
    reasons = {201: "Created", 409: "Conflict", 422: "Unprocessable Content", 429: "Too Many"}
    body = json.dumps(payload).encode()
    head = [f"HTTP/1.1 {status} {reasons.get(status, 'Status')}", "Content-Type: application/json"]
    head += [f"{name}: {value}" for name, value in (extra or {}).items()]
    if chunked:
        head.append("Transfer-Encoding: chunked")
        half = len(body) // 2
        body = (
            b"".join(
                f"{len(part):x}\r\n".encode() + part + b"\r\n"
                for part in (body[:half], body[half:])
            )
            + b"0\r\n\r\n"
        )
    else:
        head.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await writer.drain()
