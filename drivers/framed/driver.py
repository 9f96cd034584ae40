"""``FramedDriver``: open, close and one transaction at a time with a framed device.

The protocol decisions live in :mod:`protocols.framed.client` and each protocol's
procedures; this base only moves bytes and waits on the event loop's clock. The
bus is half duplex and a device answers one request at a time, so transactions
are serialised by a lock. The dispenser and cabinet drivers add their operations.
"""

from __future__ import annotations

import asyncio
from typing import Generic, Self, TypeVar

from drivers.framed.kind import DeviceKind
from drivers.framed.transport import Transport
from protocols.framed.client import FramedClient, NoAnswer
from protocols.framed.codec import RequestT, ResponseT
from protocols.framed.message import Refusal

_A = TypeVar("_A")


class FramedDriver(Generic[RequestT, ResponseT]):
    def __init__(
        self,
        transport: Transport,
        client: FramedClient[RequestT, ResponseT],
        kind: DeviceKind,
        url: str = "",
    ) -> None:
        self.transport = transport
        self.url = url
        self.kind = kind
        self._client = client
        self._lock = asyncio.Lock()
        self._open = False

    # --- life cycle ---------------------------------------------------------------

    async def open(self) -> None:
        if not self._open:
            await self.transport.open()
            self._open = True

    async def close(self) -> None:
        if self._open:
            self._open = False
            self._client.abandon()
            await self.transport.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- plumbing -----------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{self.kind.noun} {self.url or 'board'}"

    def _refused(self, request: RequestT, answer: Refusal) -> Exception:
        """The error to raise when the device answers ``request`` with ERROR."""
        return self.kind.error(f"{self._where}: refused {type(request).__name__}")

    async def _expect(self, request: RequestT, kind: type[_A]) -> _A:
        """Transact and insist on an answer of ``kind``; ERROR becomes :meth:`_refused`."""
        answer = await self._transact(request)
        if isinstance(answer, Refusal):
            raise self._refused(request, answer)
        if not isinstance(answer, kind):
            raise self.kind.error(f"{self._where}: unexpected {type(answer).__name__}")
        return answer

    def _note(self, answer: ResponseT) -> None:
        """Learn from every answer (e.g. the boot count); nothing by default."""

    async def _transact(self, request: RequestT) -> ResponseT:
        async with self._lock:
            if not self._open:
                raise self.kind.error(f"{self._where} is not open")
            loop = asyncio.get_running_loop()
            client = self._client
            try:
                self.transport.write(client.send(request, loop.time()))
                while True:
                    deadline = client.deadline
                    assert deadline is not None
                    remaining = deadline - loop.time()
                    if remaining > 0:
                        data = await self.transport.read(remaining)
                        if data:
                            answered = client.receive(data, loop.time())
                            if answered is not None:
                                self._note(answered.response)
                                return answered.response
                            continue
                    retry = client.on_timeout(loop.time())
                    if isinstance(retry, NoAnswer):
                        raise self.kind.not_answering(
                            f"{self._where} did not answer {type(request).__name__} "
                            f"after {retry.attempts} attempts"
                        )
                    if retry is not None:
                        self.transport.write(retry)
            finally:
                client.abandon()
