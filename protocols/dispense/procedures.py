"""A whole vend, or the resolution of a vend id, as a sans-I/O procedure.

A procedure says what to send next and when (:class:`Send`), and finally what
happened (:class:`Finished`). The driver runs it over :class:`DispenserClient`
transactions; tests run it straight against the simulated board. Keeping the
decisions here means "unknown" and "never received" are decided by one piece of
pure code, the same on the machine and in tests.

Ambiguity rule (docs/dispenser-protocol.md, section 7): a vend id the board has not
seen means "never received" only if the board's memory is known to cover the time
the RUN could have arrived: the RESET flag is clear and, when the caller knows it,
the board's boot count is the one recorded before the RUN was sent. Otherwise the
answer is UNKNOWN.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.dispense.errors import BoardBusyError, BoardResetPendingError, ProcedureError
from protocols.dispense.messages import (
    ErrorCode,
    ErrorReply,
    QueryVend,
    Request,
    Response,
    RunMotor,
    VendRecord,
    VendState,
)
from protocols.dispense.results import VendOutcome, VendResult, result_of_record


@dataclass(frozen=True, slots=True)
class Send:
    request: Request
    at: float


@dataclass(frozen=True, slots=True)
class Finished:
    """``result`` is ``None`` when the board never received the vend id (and never will)."""

    result: VendResult | None


Step = Send | Finished


def _refused(answer: ErrorReply, what: str) -> ProcedureError:
    if answer.error is ErrorCode.RESET_PENDING:
        return BoardResetPendingError(
            f"{what}: the board was reset; resolve in-flight vends, then acknowledge the reset"
        )
    if answer.error is ErrorCode.BUSY:
        return BoardBusyError(f"{what}: the board is busy with another vend")
    return ProcedureError(f"{what}: the board refused it ({answer.error.name})")


def _record(answer: Response, vend_id: int, what: str) -> VendRecord:
    if isinstance(answer, ErrorReply):
        raise _refused(answer, what)
    if not isinstance(answer, VendRecord):
        raise ProcedureError(f"{what}: expected a vend record, got {type(answer).__name__}")
    if answer.vend_id != vend_id:
        raise ProcedureError(f"{what}: the board answered for vend id {answer.vend_id}")
    return answer


class VendProcedure:
    """RUN MOTOR, then QUERY VEND every ``poll_interval`` until the board says DONE."""

    def __init__(
        self, motor: int, vend_id: int, now: float, timeout: float, poll_interval: float
    ) -> None:
        self.request = RunMotor(motor, vend_id)  # validates motor and vend id
        self.deadline = now + timeout
        self.poll_interval = poll_interval
        self.boot_count: int | None = None  # the board's boot when it accepted the RUN
        self._now = now

    @property
    def what(self) -> str:
        return f"vend {self.request.vend_id} on motor {self.request.motor}"

    def start(self) -> Send:
        return Send(self.request, self._now)

    def on_answer(self, answer: Response, now: float) -> Step:
        vend_id = self.request.vend_id
        record = _record(answer, vend_id, self.what)
        first = self.boot_count is None
        if first:
            self.boot_count = record.boot_count
        if record.state is VendState.VOIDED:
            raise ProcedureError(f"{self.what}: this vend id was voided; vend ids are never reused")
        if record.state is VendState.NOT_SEEN:
            if first:
                raise ProcedureError(f"{self.what}: the board answered RUN with 'not seen'")
            # Accepted earlier, forgotten now: the board restarted mid-vend.
            return Finished(VendResult(vend_id, self.request.motor, VendOutcome.UNKNOWN))
        if record.motor != self.request.motor:
            raise ProcedureError(
                f"{self.what}: the board ran this vend id on motor {record.motor}; "
                "vend ids are never reused"
            )
        if record.state is VendState.DONE:
            return Finished(result_of_record(record))
        if record.boot_count != self.boot_count:
            return Finished(VendResult(vend_id, record.motor, VendOutcome.UNKNOWN))
        if now >= self.deadline:
            return Finished(
                VendResult(
                    vend_id, record.motor, VendOutcome.BOARD_TIMEOUT, board_boot=record.boot_count
                )
            )
        return Send(QueryVend(vend_id), now + self.poll_interval)


class ResolveProcedure:
    """What happened to a vend id, e.g. after the controller restarted mid-vend.

    With ``void`` (the default) an unseen id is voided on the board, so a RUN with it
    that is still somewhere on its way can never turn a motor: "never received"
    becomes final and the customer can be refunded safely.
    """

    def __init__(
        self,
        vend_id: int,
        now: float,
        timeout: float,
        poll_interval: float,
        *,
        void: bool = True,
        since_boot: int | None = None,
    ) -> None:
        self.request = QueryVend(vend_id, void_if_unseen=void)
        self.deadline = now + timeout
        self.poll_interval = poll_interval
        self.since_boot = since_boot
        self._now = now

    def start(self) -> Send:
        return Send(self.request, self._now)

    def on_answer(self, answer: Response, now: float) -> Step:
        vend_id = self.request.vend_id
        record = _record(answer, vend_id, f"query of vend {vend_id}")
        if record.state is VendState.DONE:
            return Finished(result_of_record(record))
        if record.state is VendState.IN_PROGRESS:
            if now >= self.deadline:
                return Finished(
                    VendResult(
                        vend_id,
                        record.motor,
                        VendOutcome.BOARD_TIMEOUT,
                        board_boot=record.boot_count,
                    )
                )
            return Send(self.request, now + self.poll_interval)
        memory_lost = record.board_was_reset or (
            self.since_boot is not None and self.since_boot != record.boot_count
        )
        if memory_lost:
            return Finished(
                VendResult(vend_id, None, VendOutcome.UNKNOWN, board_boot=record.boot_count)
            )
        return Finished(None)
