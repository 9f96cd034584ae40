"""Shared state of the coin changer state machine: setup, tubes, acceptance, steps.

:class:`ChangerCore` holds what the init sequence, POLL handling
(:mod:`protocols.mdb.changer.master`) and payouts
(:mod:`protocols.mdb.changer.payout_flow`) all read and write.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from protocols.mdb.changer.codec import (
    ADDRESS,
    CHANGER,
    FEATURE_ALTERNATIVE_PAYOUT,
    ChangerIdentification,
    ChangerSetup,
    CoinType,
    DiagnosticStatus,
    TubeStatus,
    TubeStatusAnswer,
)
from protocols.mdb.changer.events import (
    TubesRead,
)
from protocols.mdb.changer.payout import (
    PayoutJob,
)
from protocols.mdb.changer.poll import (
    PollAnswer,
)
from protocols.mdb.device import DeviceMaster, ReplyHandler, Timing
from protocols.mdb.errors import DecodeError, MdbError
from protocols.mdb.events import DeviceFault, ProtocolViolation
from protocols.mdb.message import Answer, Command
from protocols.mdb.wire import Ack, Data
from protocols.money import Currency, MdbScaling, Money

A = TypeVar("A", bound=Answer)


_STEP_ATTEMPTS = 3  # undecodable answers to one step before the changer is reset


class ChangerError(MdbError):
    """The application asked the changer for something it cannot do now."""


class ChangerCore(DeviceMaster):
    """State and helpers common to every part of the changer state machine."""

    device = "changer"

    def __init__(self, currency: Currency, timing: Timing | None = None) -> None:
        super().__init__(ADDRESS, timing or Timing(non_response=2.0))
        self.currency = currency
        self._setup: ChangerSetup | None = None
        self._identification: ChangerIdentification | None = None
        self._features = 0
        self._diagnostics: DiagnosticStatus | None = None
        self._scaling: MdbScaling | None = None
        self._tubes: TubeStatusAnswer | None = None
        self._wanted: frozenset[int] = frozenset()  # what the application asked to accept
        self._accepting: frozenset[int] = frozenset()  # what the changer ACKed
        self._busy = False
        self._job: PayoutJob | None = None
        self._progress_units: int | None = None
        self._failures = 0
        self._poll_sent_at = 0.0
        self._last_poll: tuple[bytes, float] | None = None
        self._current: tuple[PollAnswer, bool] = (PollAnswer(), False)

    # --- properties -----------------------------------------------------------------

    @property
    def setup(self) -> ChangerSetup | None:
        return self._setup

    @property
    def identification(self) -> ChangerIdentification | None:
        return self._identification

    @property
    def diagnostics(self) -> DiagnosticStatus | None:
        return self._diagnostics

    @property
    def level(self) -> int | None:
        return self._setup.level if self._setup else None

    @property
    def tubes(self) -> TubeStatusAnswer | None:
        return self._tubes

    @property
    def coin_values(self) -> tuple[Money | None, ...]:
        """Value of each of the 16 coin types (None = unused or token); () before SETUP."""
        if self._setup is None or self._scaling is None:
            return ()
        return self._setup.coin_values(self._scaling)

    @property
    def supports_alternative_payout(self) -> bool:
        return (self.level or 0) >= 3 and bool(self._features & FEATURE_ALTERNATIVE_PAYOUT)

    @property
    def accepting(self) -> frozenset[int]:
        """Coin types the changer currently accepts (as last confirmed by it)."""
        return self._accepting

    @property
    def busy(self) -> bool:
        """The last POLL reported payout busy or changer busy."""
        return self._busy

    @property
    def payout_in_progress(self) -> bool:
        return self._job is not None

    @property
    def payout_progress(self) -> Money | None:
        """Value paid so far by a running alternative payout (PAYOUT VALUE POLL), if known."""
        if self._job is None or self._progress_units is None:
            return None
        return self._job.scaling.to_money(self._progress_units)

    # --- application: acceptance -------------------------------------------------------

    def enable(self, coin_types: frozenset[int] | None = None) -> None:
        """Accept ``coin_types`` (None = every coin type of the SETUP table)."""
        setup = self._require_ready()
        types = setup.coin_types if coin_types is None else frozenset(coin_types)
        unknown = sorted(types - setup.coin_types)
        if unknown:
            raise ChangerError(f"the changer has no coin types {unknown}")
        self._wanted = types
        self._send_coin_type()

    def disable(self) -> None:
        """Accept nothing. Always allowed: when not ready it holds for the next init."""
        self._wanted = frozenset()
        if self.is_ready:
            self._send_coin_type()

    def refresh_tubes(self) -> None:
        """Read TUBE STATUS; a :class:`TubesRead` event follows."""
        self._require_ready()
        self._step(TubeStatus(), self._on_tubes)

    def _require_ready(self) -> ChangerSetup:
        if not self.is_ready or self._setup is None:
            raise ChangerError(f"the changer is {self.state.value}, not ready")
        return self._setup

    def _require_scaling(self) -> MdbScaling:
        if self._scaling is None:
            raise ChangerError("the changer's coin values are unknown")
        return self._scaling

    # --- helpers ----------------------------------------------------------------------

    def _note_tube_count(self, coin_type: int, count: int) -> None:
        """Deposits and manual dispenses report the tube's new count: keep ``tubes`` current
        between TUBE STATUS reads, so nobody plans change from a stale view."""
        tubes = self._tubes
        if tubes is None or not 0 <= coin_type < len(tubes.counts):
            return
        counts = list(tubes.counts)
        counts[coin_type] = count
        self._tubes = replace(tubes, counts=tuple(counts))

    def _value(self, coin_type: int, what: str) -> Money | None:
        values = self.coin_values
        value = values[coin_type] if values else None
        if value is None:
            self._violation(f"{what} of coin type {coin_type} with no known value; not credited")
        return value

    def _fault(self, code: str, detail: str) -> None:
        self.emit(DeviceFault(self.address, self.device, code, detail))

    def _violation(self, detail: str) -> None:
        self.emit(ProtocolViolation(self.address, self.device, detail))

    def _step(self, command: Command, handler: ReplyHandler) -> None:
        """Queue ``command``; an undecodable answer asks again, a few times, then resets."""

        def run(reply: Ack | Data, now: float) -> None:
            try:
                handler(reply, now)
            except DecodeError as exc:
                self._violation(f"{command.name}: {exc}")
                self._failures += 1
                if self._failures < _STEP_ATTEMPTS:
                    self.queue(command, run)
                    return
                self.restart(now, f"{command.name} kept failing")
                self.defer(now, self.timing.retry_interval)
            else:
                self._failures = 0

        self.queue(command, run)

    @staticmethod
    def _answer(command: Command, reply: Ack | Data, kind: type[A]) -> A:
        if isinstance(reply, Ack):
            raise DecodeError(f"{command.name} was answered with ACK only")
        answer = CHANGER.decode_answer(command, reply.payload)
        if not isinstance(answer, kind):
            raise DecodeError(f"{command.name} gave {answer.name}, expected {kind.__name__}")
        return answer

    def _read_tubes(self, reply: Ack | Data) -> TubeStatusAnswer:
        tubes = self._answer(TubeStatus(), reply, TubeStatusAnswer)
        self._tubes = tubes
        values = self.coin_values
        if values:
            total = Money.zero(self.currency.code)
            for n, count in enumerate(tubes.counts):
                value = values[n]
                if value is not None:
                    total += value * count
            self.emit(TubesRead(self.address, tubes.counts, tubes.full, total))
        return tubes

    def _on_tubes(self, reply: Ack | Data, now: float) -> None:
        self._read_tubes(reply)

    def _coin_type_command(self, setup: ChangerSetup) -> CoinType:
        # Manual dispense stays enabled for every tube: it is the operator's service tool.
        return CoinType(self._wanted & setup.coin_types, setup.routing & setup.coin_types)

    def _send_coin_type(self) -> None:
        setup = self._setup
        assert setup is not None
        command = self._coin_type_command(setup)

        def confirmed(_reply: Ack | Data, _now: float) -> None:
            self._accepting = command.enabled

        self._step(command, confirmed)
