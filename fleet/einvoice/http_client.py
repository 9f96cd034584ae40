"""A small HTTP/1.1 client on asyncio streams: one POST per connection, whole-exchange
timeout.

No async HTTP library is installed, and a thread around ``urllib.request`` cannot be
cancelled: a hung provider would pin a worker thread after the caller gave up. On asyncio
streams the timeout really ends the exchange (the socket is closed), which is what a
retrying sender needs. The client is deliberately narrow: ``Connection: close``, no
redirects, no keep-alive, bodies by Content-Length, chunked or read-to-close, size-capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEADER_LINES = 100
DEFAULT_MAX_BODY = 256 * 1024


class HttpError(Exception):
    """The exchange failed: connection refused or dropped, or a malformed answer."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    reason: str
    headers: Mapping[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent on the request line

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_endpoint(url: str) -> Endpoint:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"provider URL {url!r}: expected http://host[:port]/path or https://")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"provider URL {url!r}: bad port") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Endpoint(parts.scheme, parts.hostname, port, target)


async def post(
    endpoint: Endpoint,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> HttpResponse:
    """POST ``body``; raises ``TimeoutError`` past ``timeout`` seconds (connect included)
    and ``HttpError`` for anything else that went wrong on the way."""
    request = _request(endpoint, body, headers)
    tls = (ssl_context or ssl.create_default_context()) if endpoint.scheme == "https" else None
    async with asyncio.timeout(timeout):
        try:
            reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port, ssl=tls)
        except OSError as exc:
            raise HttpError(f"cannot connect to {endpoint.host_header}: {exc}") from None
        try:
            writer.write(request)
            await writer.drain()
            return await read_response(reader, max_body)
        except OSError as exc:
            raise HttpError(f"connection to {endpoint.host_header} failed: {exc!r}") from None
        finally:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)


def _request(endpoint: Endpoint, body: bytes, headers: Mapping[str, str]) -> bytes:
    lines = [
        f"POST {endpoint.target} HTTP/1.1",
        f"Host: {endpoint.host_header}",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    for name, value in headers.items():
        if (
            not name.isascii()
            or any(c in name for c in ":\r\n ")
            or any(c in value for c in "\r\n")
        ):
            raise ValueError(f"bad HTTP header {name!r}")
        lines.append(f"{name}: {value}")
    try:
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("HTTP header values must be Latin-1 (percent-encode them)") from None
    return head + body


async def read_response(reader: asyncio.StreamReader, max_body: int) -> HttpResponse:
    """One answer from ``reader``; anything malformed or cut short is an ``HttpError``."""
    try:
        return await _read_response(reader, max_body)
    except asyncio.IncompleteReadError as exc:
        raise HttpError(f"connection closed {len(exc.partial)} bytes into a read") from None
    except (asyncio.LimitOverrunError, ValueError) as exc:  # a line beyond the reader's limit
        raise HttpError(f"answer line too long: {exc}") from None


async def _read_response(reader: asyncio.StreamReader, max_body: int) -> HttpResponse:
    while True:
        status, reason = _status_line(await reader.readline())
        headers = await _headers(reader)
        if not 100 <= status < 200:
            break  # interim answers (100 Continue, 103) come before the real one
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _chunked(reader, max_body)
    elif "content-length" in headers:
        length = _int(headers["content-length"], "Content-Length")
        if length > max_body:
            raise HttpError(f"answer body of {length} bytes exceeds {max_body}")
        body = await reader.readexactly(length)
    else:
        body = await reader.read(max_body + 1)
        if len(body) > max_body:
            raise HttpError(f"answer body exceeds {max_body} bytes")
    return HttpResponse(status, reason, headers, body)


def _status_line(line: bytes) -> tuple[int, str]:
    if not line:
        raise HttpError("connection closed before any answer")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or len(parts[1]) != 3:
        raise HttpError(f"malformed status line {line[:80]!r}")
    return _int(parts[1], "status code"), parts[2] if len(parts) == 3 else ""


async def _headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise HttpError("connection closed inside the answer's headers")
        if line in {b"\r\n", b"\n"}:
            return headers
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not name.strip():
            raise HttpError(f"malformed header line {line[:80]!r}")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    raise HttpError(f"more than {MAX_HEADER_LINES} header lines")


async def _chunked(reader: asyncio.StreamReader, max_body: int) -> bytes:
    body = bytearray()
    while True:
        size_line = (await reader.readline()).split(b";", 1)[0].strip()
        size = _int(size_line.decode("latin-1"), "chunk size", base=16)
        if size == 0:
            await _headers(reader)  # trailers, then the blank line
            return bytes(body)
        if len(body) + size > max_body:
            raise HttpError(f"answer body exceeds {max_body} bytes")
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise HttpError("chunk not followed by CRLF")


def _int(text: str, what: str, base: int = 10) -> int:
    digits = "0123456789abcdefABCDEF"[: 10 if base == 10 else 22]
    text = text.strip()
    if not text or len(text) > 16 or any(c not in digits for c in text):
        raise HttpError(f"malformed {what} {text[:20]!r}")
    return int(text, base)
