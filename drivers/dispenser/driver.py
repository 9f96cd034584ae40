"""``Dispenser``: the async driver for a motor board speaking docs/dispenser-protocol.md.

The protocol decisions live in :mod:`protocols.dispense` (client, procedures); this
module only moves bytes and waits. One transaction at a time: the bus is half
duplex and the board answers one request at a time.

Exactly-once in practice: the controller picks a fresh vend id, journals it with
:attr:`Dispenser.board_boot`, then calls :meth:`Dispenser.vend`. After a crash it
calls :meth:`Dispenser.query` with that id and boot, and only then
:meth:`Dispenser.acknowledge_reset` if the board was reset.
"""

from __future__ import annotations

import asyncio

from drivers.dispenser.errors import BoardBusyError, BoardResetPendingError, DispenserError
from drivers.dispenser.transport import DISPENSER, transport_for_url
from drivers.framed.driver import FramedDriver
from drivers.framed.transport import Transport
from drivers.sim.dispenser import SimDispenserBoard
from protocols.dispense import errors as proto
from protocols.dispense.client import ClientTiming, DispenserClient
from protocols.dispense.messages import (
    AcknowledgeReset,
    BoardStatus,
    ErrorReply,
    FaultCleared,
    GetStatus,
    Request,
    ResetAcknowledged,
    ResetFault,
    Response,
    VendRecord,
)
from protocols.dispense.procedures import Finished, ResolveProcedure, Step, VendProcedure
from protocols.dispense.results import VendResult
from protocols.framed.message import Refusal


class Dispenser(FramedDriver[Request, Response]):
    def __init__(
        self,
        transport: Transport,
        *,
        address: int = 0x01,
        timing: ClientTiming | None = None,
        url: str = "",
    ) -> None:
        self.timing = timing or ClientTiming()
        super().__init__(transport, DispenserClient(address, self.timing), DISPENSER, url)
        #: The board's boot count as last seen; journal it with a vend id before RUN.
        self.board_boot: int | None = None

    # --- operations ---------------------------------------------------------------

    async def status(self) -> BoardStatus:
        answer = await self._expect(GetStatus(), BoardStatus)
        self.board_boot = answer.boot_count
        return answer

    async def vend(self, motor: int, vend_id: int, timeout: float = 10.0) -> VendResult:
        """Run one vend and wait for the drop sensor's verdict.

        Raises :class:`DispenserError` if the board stops answering: the vend is then
        unresolved and must be settled with :meth:`query` once the board is back.
        """
        loop = asyncio.get_running_loop()
        try:
            procedure = VendProcedure(
                motor, vend_id, loop.time(), timeout, self.timing.poll_interval
            )
        except proto.DecodeError as exc:
            raise DispenserError(f"cannot vend: {exc}") from None
        result = await self._run(procedure)
        assert result is not None  # a vend always ends in a verdict
        return result

    async def query(
        self,
        vend_id: int,
        timeout: float = 10.0,
        *,
        void: bool = True,
        since_boot: int | None = None,
    ) -> VendResult | None:
        """What happened to ``vend_id``: a verdict, or ``None`` if the board never got it.

        ``None`` is final: with ``void`` the board also refuses that id from now on.
        A board that lost its memory gives outcome UNKNOWN, never ``None``. Pass the
        boot count journaled with the vend as ``since_boot`` to catch a reset that
        someone already acknowledged.
        """
        loop = asyncio.get_running_loop()
        try:
            procedure = ResolveProcedure(
                vend_id,
                loop.time(),
                timeout,
                self.timing.poll_interval,
                void=void,
                since_boot=since_boot,
            )
        except proto.DecodeError as exc:
            raise DispenserError(f"cannot query: {exc}") from None
        return await self._run(procedure)

    async def reset_fault(self, motor: int | None) -> None:
        """Clear a motor's latched fault after service (``None``: every motor)."""
        try:
            request = ResetFault(motor)
        except proto.DecodeError as exc:
            raise DispenserError(f"cannot reset fault: {exc}") from None
        await self._expect(request, FaultCleared)

    async def acknowledge_reset(self, boot_count: int | None = None) -> int:
        """Clear the board's RESET flag so it accepts RUN again; returns the boot count.

        Call it only after every journaled in-flight vend was resolved with
        :meth:`query`: afterwards the board can no longer say it lost its memory.
        """
        if boot_count is None:
            boot_count = (await self.status()).boot_count
        answer = await self._expect(AcknowledgeReset(boot_count), ResetAcknowledged)
        self.board_boot = answer.boot_count
        return answer.boot_count

    # --- plumbing -----------------------------------------------------------------

    async def _run(self, procedure: VendProcedure | ResolveProcedure) -> VendResult | None:
        loop = asyncio.get_running_loop()
        step: Step = procedure.start()
        while not isinstance(step, Finished):
            delay = step.at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            answer = await self._transact(step.request)
            try:
                step = procedure.on_answer(answer, loop.time())
            except proto.BoardResetPendingError as exc:
                raise BoardResetPendingError(f"{self._where}: {exc}") from None
            except proto.BoardBusyError as exc:
                raise BoardBusyError(f"{self._where}: {exc}") from None
            except proto.ProcedureError as exc:
                raise DispenserError(f"{self._where}: {exc}") from None
        return step.result

    def _refused(self, request: Request, answer: Refusal) -> Exception:
        assert isinstance(answer, ErrorReply)
        return DispenserError(
            f"{self._where}: board refused {type(request).__name__} ({answer.error.name})"
        )

    def _note(self, answer: Response) -> None:
        if isinstance(answer, VendRecord | BoardStatus):
            self.board_boot = answer.boot_count


def open_dispenser(
    url: str, *, board: SimDispenserBoard | None = None, timing: ClientTiming | None = None
) -> Dispenser:
    """Build (not yet open) the driver for ``url``; ``board`` backs a ``memory://`` URL."""
    transport, address = transport_for_url(url, board)
    return Dispenser(transport, address=address, timing=timing, url=url)
