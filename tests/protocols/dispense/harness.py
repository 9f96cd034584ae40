"""Client and simulated board back to back on a fake clock, no I/O at all."""

from __future__ import annotations

from drivers.sim.dispenser import SimDispenserBoard
from protocols.dispense.client import Answered, ClientTiming, DispenserClient, NoAnswer
from protocols.dispense.messages import AcknowledgeReset, Request, Response
from protocols.dispense.procedures import Finished, ResolveProcedure, Step, VendProcedure
from protocols.dispense.results import VendResult

WIRE_TIME = 0.01  # a frame each way at 19200 baud, roughly


class Wire:
    def __init__(self, board: SimDispenserBoard, client: DispenserClient | None = None) -> None:
        self.board = board
        self.client = client or DispenserClient(timing=ClientTiming())
        self.now = 1000.0
        self.lose_requests = 0  # the next N frames to the board vanish on the wire
        self.last: Answered[Request, Response] | None = None

    def transact(self, request: Request) -> Response | NoAnswer[Request]:
        data = self.client.send(request, self.now)
        while True:
            if self.lose_requests:
                self.lose_requests -= 1
                answer = b""
            else:
                answer = self.board.receive(data, self.now)
            self.now += WIRE_TIME
            if answer:
                answered = self.client.receive(answer, self.now)
                if answered is not None:
                    self.last = answered
                    return answered.response
            deadline = self.client.deadline
            assert deadline is not None
            self.now = max(self.now, deadline)
            retry = self.client.on_timeout(self.now)
            if isinstance(retry, NoAnswer):
                return retry
            assert retry is not None
            data = retry

    def answer(self, request: Request) -> Response:
        response = self.transact(request)
        assert not isinstance(response, NoAnswer), "the board did not answer"
        return response

    def run(
        self, procedure: VendProcedure | ResolveProcedure, step: Step | None = None
    ) -> VendResult | None:
        """Run ``procedure`` to its end, from its start or from ``step``."""
        step = step or procedure.start()
        while not isinstance(step, Finished):
            self.now = max(self.now, step.at)
            step = procedure.on_answer(self.answer(step.request), self.now)
        return step.result

    def vend(self, motor: int, vend_id: int, timeout: float = 10.0) -> VendResult:
        result = self.run(VendProcedure(motor, vend_id, self.now, timeout, 0.2))
        assert result is not None
        return result

    def query(
        self, vend_id: int, *, void: bool = True, since_boot: int | None = None
    ) -> VendResult | None:
        return self.run(
            ResolveProcedure(vend_id, self.now, 10.0, 0.2, void=void, since_boot=since_boot)
        )

    def acknowledge(self) -> None:
        self.answer(AcknowledgeReset(self.board.boot_count))


def ready_board(
    motors: int = 60, stock: int = 5, vend_time: float = 1.5, memory: int = 32
) -> SimDispenserBoard:
    """A board whose power-up reset the controller has already acknowledged."""
    board = SimDispenserBoard(motors=motors, stock=stock, vend_time=vend_time, memory=memory)
    Wire(board).acknowledge()
    return board
