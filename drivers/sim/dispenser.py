"""A simulated motor board speaking docs/dispenser-protocol.md: the board's firmware, no I/O.

Bytes in, bytes out, with ``now`` passed in (real time on a pty, a fake clock in
tests). The board answers only when asked, as on a half-duplex RS-485 bus, so a
running motor's progress is worked out lazily from ``now`` at each request.

What it models: a motor matrix (address = row * 10 + column), stock per motor, a
motor run time, the drop sensor, faults scripted per motor (jam, empty, motor not
home, over-current, product hangs, slow), latched motor faults, the exactly-once
vend memory of the last ``memory`` vend ids, and power cycles (memory lost, boot
count up, RESET flag set, RUN refused until the controller acknowledges).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace

from drivers.sim.args import count_arg, flag_arg, index_arg, number_arg, text_arg
from drivers.sim.framed import FramedSim, WireCounters
from protocols.dispense.messages import (
    CODEC,
    MAX_LISTED_FAULTS,
    MAX_MOTORS,
    AcknowledgeReset,
    BoardFlags,
    BoardStatus,
    ErrorCode,
    ErrorReply,
    Fault,
    FaultCleared,
    GetStatus,
    MotorFault,
    QueryVend,
    Request,
    ResetAcknowledged,
    ResetFault,
    Response,
    RunMotor,
    VendRecord,
    VendState,
)

CONDITIONS = ("jam", "empty", "motor_not_home", "over_current", "no_drop", "slow")
_LATCHED = frozenset({Fault.JAM, Fault.EMPTY, Fault.MOTOR_NOT_HOME, Fault.OVER_CURRENT})


@dataclass(slots=True)
class MotorConditions:
    """Physical trouble at one motor, as a test or an operator scripted it."""

    fault: str | None = None  # one of CONDITIONS except "slow"
    once: bool = False  # the condition clears itself after one vend
    drops: bool = False  # motor_not_home: the product fell anyway
    extra_time: float = 0.0  # slow: seconds added to every turn


@dataclass(slots=True)
class _Vend:
    vend_id: int
    motor: int | None
    state: VendState
    fault: Fault = Fault.NONE
    dropped: bool = False
    ends_at: float = 0.0


@dataclass(slots=True)
class _Counters(WireCounters):
    turns: dict[int, int] = field(default_factory=dict)  # vends that started a motor


class SimDispenserBoard(FramedSim[Request, Response]):
    """The board's firmware. ``receive`` is a :data:`drivers.sim.pty.ByteHandler`."""

    counters: _Counters

    def __init__(
        self,
        motors: int = 60,
        *,
        stock: int = 5,
        vend_time: float = 1.5,
        address: int = 0x01,
        memory: int = 32,
        boot_count: int = 0,
    ) -> None:
        if not 1 <= motors <= MAX_MOTORS:
            raise ValueError(f"motors must be 1..{MAX_MOTORS}, got {motors}")
        if stock < 0:
            raise ValueError(f"stock must be >= 0, got {stock}")
        if vend_time <= 0:
            raise ValueError(f"vend time must be > 0 seconds, got {vend_time}")
        if memory < 1:
            raise ValueError(f"memory must hold at least one vend, got {memory}")
        super().__init__(CODEC, address, _Counters(), boot_count)
        self.motors = motors
        self.vend_time = vend_time
        self.memory = memory
        self.stock = dict.fromkeys(range(motors), stock)
        self.conditions: dict[int, MotorConditions] = {}
        self.latched: dict[int, Fault] = {}
        self._vends: OrderedDict[int, _Vend] = OrderedDict()
        self._active: _Vend | None = None
        self._last_vend_id: int | None = None
        self._power_up()

    # --- the firmware -------------------------------------------------------------

    def handle(self, request: Request, now: float) -> Response:
        """Answer one decoded request (tests may call this directly)."""
        self._advance(now)
        match request:
            case GetStatus():
                return self._status()
            case RunMotor():
                return self._run(request, now)
            case QueryVend():
                return self._query(request)
            case ResetFault(motor=motor):
                if motor is not None and motor >= self.motors:
                    return ErrorReply(request.CODE, ErrorCode.BAD_ARGUMENT)
                for m in [motor] if motor is not None else list(self.latched):
                    self.latched.pop(m, None)
                return FaultCleared(motor)
            case AcknowledgeReset(boot_count=boot):
                return self._acknowledge_reset(request.CODE, boot, ResetAcknowledged)

    def _flags(self) -> BoardFlags:
        flags = BoardFlags.NONE
        if self.reset_pending:
            flags |= BoardFlags.RESET
        if self._active is not None:
            flags |= BoardFlags.BUSY
        return flags

    def _record(self, vend: _Vend) -> VendRecord:
        return VendRecord(
            vend_id=vend.vend_id,
            state=vend.state,
            motor=vend.motor,
            fault=vend.fault,
            dropped=vend.dropped,
            boot_count=self.boot_count,
            board_flags=self._flags(),
        )

    def _status(self) -> BoardStatus:
        faults = [MotorFault(m, f) for m, f in sorted(self.latched.items())]
        flags = self._flags()
        if len(faults) > MAX_LISTED_FAULTS:
            flags |= BoardFlags.FAULTS_TRUNCATED
        return BoardStatus(
            boot_count=self.boot_count,
            flags=flags,
            motors=self.motors,
            active_vend_id=self._active.vend_id if self._active else None,
            last_vend_id=self._last_vend_id,
            faults=tuple(faults[:MAX_LISTED_FAULTS]),
        )

    def _query(self, request: QueryVend) -> Response:
        vend = self._vends.get(request.vend_id)
        if vend is None:
            if not self._may_void(request.void_if_unseen):
                return self._record(_Vend(request.vend_id, None, VendState.NOT_SEEN))
            vend = _Vend(request.vend_id, None, VendState.VOIDED)
            self._remember(vend)
        return self._record(vend)

    def _run(self, request: RunMotor, now: float) -> Response:
        known = self._vends.get(request.vend_id)
        if known is not None:
            return self._record(known)  # the exactly-once rule: never turn twice
        refusal = self._refuse_start(request.CODE, busy=self._active is not None)
        if refusal is not None:
            return refusal
        motor = request.motor
        vend = _Vend(request.vend_id, motor, VendState.DONE)
        self._remember(vend)
        self._last_vend_id = request.vend_id
        if motor >= self.motors:
            vend.fault = Fault.INVALID_SLOT
        elif motor in self.latched:
            vend.fault = self.latched[motor]  # refuse to turn a motor that needs service
        elif self.stock[motor] == 0 or self._condition(motor) == "empty":
            vend.fault = Fault.EMPTY  # the column-empty switch; the motor does not turn
            self.latched[motor] = Fault.EMPTY
            cond = self.conditions.get(motor)
            if cond is not None and cond.once:
                self.conditions[motor] = replace(cond, fault=None, once=False)
        else:
            self._start(vend, motor, now)
        return self._record(vend)

    def _condition(self, motor: int) -> str | None:
        cond = self.conditions.get(motor)
        return cond.fault if cond else None

    def _start(self, vend: _Vend, motor: int, now: float) -> None:
        self.counters.turns[motor] = self.counters.turns.get(motor, 0) + 1
        cond = self.conditions.get(motor, MotorConditions())
        turn = self.vend_time + cond.extra_time
        # Fractions of a turn at which each fault shows itself; "no drop" tries a second turn.
        durations = {"over_current": 0.1, "jam": 0.5, "motor_not_home": 1.5, "no_drop": 2.0}
        vend.state = VendState.IN_PROGRESS
        vend.ends_at = now + turn * durations.get(cond.fault or "", 1.0)
        self._active = vend
        if cond.once and cond.fault:
            self.conditions[motor] = replace(cond, fault=None, once=False)
        vend.fault = {
            "over_current": Fault.OVER_CURRENT,
            "jam": Fault.JAM,
            "motor_not_home": Fault.MOTOR_NOT_HOME,
            "no_drop": Fault.NO_DROP,
        }.get(cond.fault or "", Fault.NONE)
        vend.dropped = vend.fault is Fault.NONE or (
            vend.fault is Fault.MOTOR_NOT_HOME and cond.drops
        )

    def _advance(self, now: float) -> None:
        vend = self._active
        if vend is None or now < vend.ends_at:
            return
        assert vend.motor is not None
        vend.state = VendState.DONE
        if vend.dropped:
            self.stock[vend.motor] -= 1
        if vend.fault in _LATCHED:
            self.latched[vend.motor] = vend.fault
        self._active = None

    def _remember(self, vend: _Vend) -> None:
        self._vends[vend.vend_id] = vend
        while len(self._vends) > self.memory:
            self._vends.popitem(last=False)

    def _power_up(self) -> None:
        self._restart()
        self._vends.clear()
        self._active = None
        self._last_vend_id = None
        self.latched.clear()

    # --- scripted faults and status -----------------------------------------------

    def power_cycle(self, now: float, dropped: bool = False) -> None:
        """Power cut and back: a running motor stops (``dropped``: its product fell first)."""
        self._advance(now)
        if self._active is not None and dropped and self._active.motor is not None:
            self.stock[self._active.motor] -= 1
        self._power_up()

    def control(self, action: str, args: dict[str, object], now: float) -> dict[str, object]:
        self._advance(now)
        if action == "fault":
            kind = text_arg(args, "fault")
            if kind not in CONDITIONS:
                raise ValueError(f"unknown fault {kind!r}; known: {', '.join(CONDITIONS)}")
            motor = self._motor_arg(args)
            if kind == "slow":
                seconds = number_arg(args, "seconds", self.vend_time)
                cond = self.conditions.get(motor, MotorConditions())
                self.conditions[motor] = replace(cond, extra_time=seconds)
            else:
                once, drops = flag_arg(args, "once"), flag_arg(args, "drops")
                extra = self.conditions.get(motor, MotorConditions()).extra_time
                self.conditions[motor] = MotorConditions(kind, once, drops, extra)
        elif action == "clear":
            self.conditions.pop(self._motor_arg(args), None)
        elif action == "service":
            motor = self._motor_arg(args)
            self.conditions.pop(motor, None)
            self.latched.pop(motor, None)
            if "stock" in args:
                self.stock[motor] = count_arg(args, "stock")
        elif action == "stock":
            count = count_arg(args, "count")
            for motor in [self._motor_arg(args)] if "motor" in args else list(self.stock):
                self.stock[motor] = count
        elif action == "power_cycle":
            self.power_cycle(now, flag_arg(args, "dropped"))
        elif action != "status" and not self._wire_control(action, args):
            raise ValueError(f"dispenser has no action {action!r}")
        return self.status()

    def _motor_arg(self, args: dict[str, object]) -> int:
        return index_arg(args, "motor", self.motors)

    def status(self) -> dict[str, object]:
        active = self._active
        return {
            **self._wire_status(),
            "busy": active is not None,
            "active_vend_id": active.vend_id if active else None,
            "motors": self.motors,
            "stock": {str(m): n for m, n in self.stock.items()},
            "turns": {str(m): n for m, n in sorted(self.counters.turns.items())},
            "latched": {str(m): f.name.lower() for m, f in sorted(self.latched.items())},
            "conditions": {
                str(m): {"fault": c.fault, "once": c.once, "extra_time": c.extra_time}
                for m, c in sorted(self.conditions.items())
            },
            "remembered_vends": len(self._vends),
            "answers_dropped": self.counters.answers_dropped,
        }
