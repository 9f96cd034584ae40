"""``Cabinet``: the async driver for a smart cabinet speaking docs/cabinet-protocol.md.

The protocol decisions live in :mod:`protocols.cabinet` (client, procedures, session);
this module only moves bytes and waits, one transaction at a time.

Exactly-once in practice: the controller picks a fresh session id, journals it with
:attr:`Cabinet.boot`, then calls :meth:`Cabinet.unlock`. After a crash it calls
:meth:`Cabinet.verdict` with that id and boot before anything else, and only then
:meth:`Cabinet.acknowledge_reset` if the cabinet was reset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from drivers.cabinet.errors import CabinetBusyError, CabinetDriverError, CabinetResetPendingError
from drivers.cabinet.transport import CABINET, transport_for_url
from drivers.framed.driver import FramedDriver
from drivers.framed.transport import Transport
from drivers.sim.cabinet import SimCabinet
from protocols.cabinet import errors as proto
from protocols.cabinet.client import CabinetClient, ClientTiming
from protocols.cabinet.messages import (
    AcknowledgeReset,
    CabinetStatus,
    ErrorReply,
    Events,
    GetStatus,
    Identify,
    Identity,
    Lock,
    QuerySession,
    ReadEvents,
    Request,
    ResetAcknowledged,
    Response,
    SessionRecord,
    Unlock,
)
from protocols.cabinet.model import ShelfChange, ShelfReading
from protocols.cabinet.procedures import (
    InventoryProcedure,
    ReportProcedure,
    Send,
    SessionVerdict,
    refused,
    verdict_of,
)
from protocols.framed.message import Refusal

_T = TypeVar("_T")
_Done_co = TypeVar("_Done_co", covariant=True)


class _Procedure(Protocol[_Done_co]):
    """A multi-page read: what to send first, then the next step from each answer."""

    def start(self) -> Send: ...

    def on_answer(self, answer: Response) -> Send | _Done_co: ...


class Cabinet(FramedDriver[Request, Response]):
    def __init__(
        self,
        transport: Transport,
        *,
        address: int = 0x20,
        timing: ClientTiming | None = None,
        url: str = "",
    ) -> None:
        self.timing = timing or ClientTiming()
        super().__init__(transport, CabinetClient(address, self.timing), CABINET, url)
        #: The cabinet's boot count as last seen; journal it with a session id before UNLOCK.
        self.boot: int | None = None
        #: Number of shelves, learnt from IDENTIFY.
        self.shelves: int | None = None

    # --- operations ---------------------------------------------------------------

    async def identify(self) -> Identity:
        answer = await self._expect(Identify(), Identity)
        self.boot, self.shelves = answer.boot_count, len(answer.shelves)
        return answer

    async def status(self) -> CabinetStatus:
        answer = await self._expect(GetStatus(), CabinetStatus)
        self.boot = answer.boot_count
        return answer

    async def unlock(
        self, session_id: int, open_window: int = 30, held_open_limit: int = 60
    ) -> SessionRecord:
        """Release the lock for one session; a repeated id answers its record, never unlocks."""
        request = self._build(lambda: Unlock(session_id, open_window, held_open_limit))
        return await self._record(request)

    async def lock(self, session_id: int) -> SessionRecord:
        """Cancel an unlocked session whose door has not opened."""
        return await self._record(self._build(lambda: Lock(session_id)))

    async def query(self, session_id: int, *, void: bool = True) -> SessionRecord:
        return await self._record(self._build(lambda: QuerySession(session_id, void)))

    async def verdict(
        self, session_id: int, *, void: bool = True, since_boot: int | None = None
    ) -> SessionVerdict:
        """What happened to a session id; UNKNOWN if the cabinet cannot say, never a guess."""
        return verdict_of(await self.query(session_id, void=void), since_boot)

    async def inventory(self) -> tuple[ShelfReading, ...]:
        """Every shelf's live reading (weight, tags)."""
        done = await self._follow(InventoryProcedure(await self._shelf_count()))
        return done.readings

    async def session_report(self, session_id: int) -> tuple[ShelfChange, ...]:
        """What changed on every shelf between unlock and door close."""
        shelves = await self._shelf_count()
        done = await self._follow(self._build(lambda: ReportProcedure(session_id, shelves)))
        return done.changes

    async def read_events(self, ack_through: int = 0, boot: int | None = None) -> Events:
        """Queued events; ``ack_through`` drops those already journaled (of ``boot``)."""
        if boot is None:
            boot = self.boot if self.boot is not None else (await self.status()).boot_count
        answer = await self._expect(self._build(lambda: ReadEvents(boot, ack_through)), Events)
        self.boot = answer.boot_count
        return answer

    async def acknowledge_reset(self, boot_count: int | None = None) -> int:
        """Clear the RESET flag; call it only once every journaled session is resolved."""
        if boot_count is None:
            boot_count = (await self.status()).boot_count
        answer = await self._expect(AcknowledgeReset(boot_count), ResetAcknowledged)
        self.boot = answer.boot_count
        return answer.boot_count

    # --- plumbing -----------------------------------------------------------------

    def _build(self, factory: Callable[[], _T]) -> _T:
        """A request or procedure from caller arguments; a bad argument is our error."""
        try:
            return factory()
        except proto.CabinetError as exc:
            raise CabinetDriverError(f"{self._where}: {exc}") from None

    def _translate(self, exc: proto.ProcedureError) -> CabinetDriverError:
        if isinstance(exc, proto.CabinetResetPendingError):
            return CabinetResetPendingError(f"{self._where}: {exc}")
        if isinstance(exc, proto.CabinetBusyError):
            return CabinetBusyError(f"{self._where}: {exc}")
        return CabinetDriverError(f"{self._where}: {exc}")

    async def _follow(self, procedure: _Procedure[_T]) -> _T:
        """Run a multi-page read to its end, one transaction per page."""
        step: Send | _T = procedure.start()
        while isinstance(step, Send):
            answer = await self._transact(step.request)
            try:
                step = procedure.on_answer(answer)
            except proto.ProcedureError as exc:
                raise self._translate(exc) from None
        return step

    async def _shelf_count(self) -> int:
        if self.shelves is None:
            await self.identify()
        assert self.shelves is not None
        return self.shelves

    async def _record(self, request: Unlock | Lock | QuerySession) -> SessionRecord:
        answer = await self._transact(request)
        if isinstance(answer, ErrorReply):
            raise self._refused(request, answer)
        if not isinstance(answer, SessionRecord) or answer.session_id != request.session_id:
            raise CabinetDriverError(f"{self._where}: unexpected answer {answer.describe()}")
        self.boot = answer.boot_count
        return answer

    def _refused(self, request: Request, answer: Refusal) -> Exception:
        assert isinstance(answer, ErrorReply)
        return self._translate(refused(answer, type(request).__name__))


def open_cabinet(
    url: str, *, cabinet: SimCabinet | None = None, timing: ClientTiming | None = None
) -> Cabinet:
    """Build (not yet open) the driver for ``url``; ``cabinet`` backs a ``memory://`` URL."""
    transport, address = transport_for_url(url, cabinet)
    return Cabinet(transport, address=address, timing=timing, url=url)
