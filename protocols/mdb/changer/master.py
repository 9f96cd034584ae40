"""The VMC's coin changer state machine, Levels 2 and 3 (mdb.md sections 3 and 6).

Initialisation, after the base class has seen "changer was reset"::

    SETUP -> (Level 3) IDENTIFICATION -> FEATURE ENABLE -> (extended diagnostics offered)
    DIAGNOSTIC STATUS -> TUBE STATUS -> COIN TYPE -> READY

DIAGNOSTIC STATUS is only asked when the changer offers extended diagnostics: a
changer without the feature may not answer it, and silence would take it offline.
COIN TYPE always goes out at the end of init (a changer comes up disabled): it
accepts nothing until the application calls :meth:`ChangerMaster.enable`, and after an
unexpected reset or a return from offline it re-applies the application's last choice.

Duplicates after a lost ACK: a changer that missed our ACK sends the same POLL data
again on the next POLL. The rule here: a POLL answer byte-identical to the one just
before it (no empty POLL in between, no RESET since) is a resend if

* it holds a tube-routed deposit or a manual dispense — a genuine new coin of that
  type would have changed the tube count it reports, so identical bytes prove a
  repeat; or
* it came within :attr:`ChangerMaster.RESEND_WINDOW` of the previous one. Cash-box
  coins carry the unchanged tube count, so two genuine same-type cash-box coins look
  exactly like a resend; they are told apart only by time. A coin mechanism does not
  validate two coins within 0.25 s, and coins closer together would share one POLL
  answer, so inside the window it is a resend. Outside it (a slow or retrying bus)
  it is credited: the residual risk is a double credit when a lost ACK meets a bus
  slower than the window, which the journal's reconciliation against the cash box
  count exposes.

Busy statuses in a resend still count (they describe the changer now); nothing else in
it is reported again. "Changer was reset" in a resend does not restart init.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from typing import TypeVar

from protocols.change import (
    ChangeError,
    ChangePlan,
    alternative_payout_units,
    plan_best_effort,
    tubes_from,
)
from protocols.mdb.changer.codec import (
    ADDRESS,
    CHANGER,
    COIN_TYPES,
    FEATURE_ALTERNATIVE_PAYOUT,
    FEATURE_EXTENDED_DIAGNOSTIC,
    TOKEN_CREDIT,
    AlternativePayout,
    ChangerIdentification,
    ChangerSetup,
    CoinType,
    DiagnosticStatus,
    DiagnosticStatusRequest,
    Dispense,
    FeatureEnable,
    Identification,
    PayoutStatusAnswer,
    PayoutStatusRequest,
    PayoutValue,
    PayoutValuePoll,
    Poll,
    Reset,
    Setup,
    TubeStatus,
    TubeStatusAnswer,
)
from protocols.mdb.changer.events import (
    FAULT_CODES,
    ChangerInfo,
    CoinAccepted,
    CoinRejected,
    CoinsDispensedManually,
    PayoutCompleted,
    ReturnLeverPressed,
    SlugsDetected,
    TokenAccepted,
    TubesRead,
)
from protocols.mdb.changer.payout import (
    MAX_ALTERNATIVE,
    PayoutJob,
    Phase,
    alternative_commands,
    dispense_commands,
)
from protocols.mdb.changer.poll import (
    ChangerStatus,
    CoinDeposited,
    PollAnswer,
    PollItem,
    Route,
    StatusCode,
    decode_poll,
)
from protocols.mdb.changer.poll import CoinsDispensedManually as ManualItem
from protocols.mdb.changer.poll import SlugsDetected as SlugItem
from protocols.mdb.device import DeviceMaster, DeviceState, ReplyHandler, Timing
from protocols.mdb.errors import DecodeError, MdbError
from protocols.mdb.events import DeviceFault, ProtocolViolation
from protocols.mdb.message import Answer, Command
from protocols.mdb.wire import Ack, Data
from protocols.money import Currency, MdbScaling, Money, MoneyError

A = TypeVar("A", bound=Answer)

_BUSY = (StatusCode.PAYOUT_BUSY, StatusCode.CHANGER_BUSY)
_WANTED_FEATURES = FEATURE_ALTERNATIVE_PAYOUT | FEATURE_EXTENDED_DIAGNOSTIC
_STEP_ATTEMPTS = 3  # undecodable answers to one step before the changer is reset


class ChangerError(MdbError):
    """The application asked the changer for something it cannot do now."""


class ChangerMaster(DeviceMaster):
    """Coin changer at address 0x08. Application calls raise :class:`ChangerError`."""

    device = "changer"
    RESEND_WINDOW = 0.25  # seconds; see the module docstring

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

    # --- application ----------------------------------------------------------------

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

    def payout(self, amount: Money) -> None:
        """Pay ``amount`` as change; a :class:`PayoutCompleted` event reports what was paid.

        Level 3 changers that offer it choose the coins (ALTERNATIVE PAYOUT); otherwise
        the coins are planned here from the tube counts and paid with DISPENSE.
        """
        setup = self._require_ready()
        scaling = self._require_scaling()
        try:
            units = scaling.to_units(amount)
        except MoneyError as exc:
            raise ChangerError(f"cannot pay {amount}: {exc}") from None
        if units <= 0:
            raise ChangerError(f"nothing to pay: {amount}")
        self._start(PayoutJob(units, self.supports_alternative_payout, scaling, setup.coin_credits))

    def dispense(self, plan: Mapping[int, int]) -> None:
        """Pay exactly these coins (coin type -> count) with DISPENSE commands."""
        setup = self._require_ready()
        scaling = self._require_scaling()
        for coin_type, count in plan.items():
            if not 0 <= coin_type < COIN_TYPES or setup.coin_credits[coin_type] in (
                0,
                TOKEN_CREDIT,
            ):
                raise ChangerError(f"coin type {coin_type} cannot be paid out")
            if coin_type not in setup.routing:
                raise ChangerError(f"coin type {coin_type} has no tube")
            if count < 0:
                raise ChangerError(f"negative count {count} for coin type {coin_type}")
        chosen = {t: c for t, c in plan.items() if c}
        if not chosen:
            raise ChangerError("the dispense plan holds no coins")
        job = PayoutJob(
            0, alternative=False, scaling=scaling, credits=setup.coin_credits, plan=chosen
        )
        job.requested_units = job.units_of([chosen.get(n, 0) for n in range(COIN_TYPES)])
        self._start(job)

    def _require_ready(self) -> ChangerSetup:
        if not self.is_ready or self._setup is None:
            raise ChangerError(f"the changer is {self.state.value}, not ready")
        return self._setup

    def _require_scaling(self) -> MdbScaling:
        if self._scaling is None:
            raise ChangerError("the changer's coin values are unknown")
        return self._scaling

    # --- DeviceMaster hooks -----------------------------------------------------------

    def reset_command(self) -> Command:
        # After RESET the changer drops unsent data, so nothing can be a resend.
        self._last_poll = None
        return Reset()

    def poll_command(self) -> Command:
        return Poll()

    def request(self, now: float) -> bytes:
        block = super().request(now)
        if isinstance(self.inflight, Poll):
            self._poll_sent_at = now
        return block

    def poll_shows_reset(self, reply: Ack | Data) -> bool:
        self._current = self._classify(reply)
        answer, resend = self._current
        return not resend and answer.has_status(StatusCode.CHANGER_WAS_RESET)

    def start_init(self, now: float) -> None:
        self._setup = None
        self._identification = None
        self._features = 0
        self._diagnostics = None
        self._accepting = frozenset()
        self._busy = False
        self._failures = 0
        self._step(Setup(), self._on_setup)

    def handle_poll(self, reply: Ack | Data, now: float) -> None:
        answer, resend = self._current
        self._busy = any(answer.has_status(code) for code in _BUSY)
        if not resend:
            for item in answer.items:
                self._on_item(item)
        if self._busy:
            self.defer(now, self.timing.busy_interval)
        self._advance(now)

    def replay_drained(self, answers: list[Data], now: float) -> None:
        # Coins that reached a tube or the cash box while no controller listened.
        for data in answers:
            try:
                items = decode_poll(data.payload).items
            except DecodeError as exc:
                self._violation(f"drained POLL answer: {exc}")
                continue
            for item in items:
                if isinstance(item, CoinDeposited) and item.route in (Route.TUBE, Route.CASH_BOX):
                    value = self._value(item.coin_type, "drained deposit")
                    if value is not None:
                        to_tube = item.route is Route.TUBE
                        self.emit(
                            CoinAccepted(
                                self.address, item.coin_type, value, to_tube, item.tube_count
                            )
                        )

    def on_lost(self, reason: str, now: float) -> None:
        self._busy = False
        self._accepting = frozenset()
        job = self._job
        if job is None:
            return
        if job.phase is Phase.READ_BEFORE:
            # Nothing was sent yet, so nothing was paid.
            self._job = None
            self._complete(job, (0,) * COIN_TYPES)
        else:
            job.phase = Phase.INTERRUPTED

    # --- POLL items ---------------------------------------------------------------------

    def _classify(self, reply: Ack | Data) -> tuple[PollAnswer, bool]:
        """Decode a POLL answer and decide whether it resends the previous one."""
        if isinstance(reply, Ack):
            self._last_poll = None
            return PollAnswer(), False
        previous = self._last_poll
        self._last_poll = (reply.payload, self._poll_sent_at)
        self._current = (PollAnswer(), False)  # if decoding fails, nothing stale is reused
        answer = decode_poll(reply.payload)
        if previous is None or previous[0] != reply.payload:
            return answer, False
        proof = any(
            isinstance(i, ManualItem) or (isinstance(i, CoinDeposited) and i.route is Route.TUBE)
            for i in answer.items
        )
        return answer, proof or self._poll_sent_at - previous[1] <= self.RESEND_WINDOW

    def _on_item(self, item: PollItem) -> None:
        if isinstance(item, CoinDeposited):
            self._on_deposit(item)
        elif isinstance(item, ManualItem):
            self._note_tube_count(item.coin_type, item.tube_count)
            if self._job is not None:
                self._job.tube_delta[item.coin_type] -= item.count
            value = self._value(item.coin_type, "manual dispense")
            if value is not None:
                self.emit(
                    CoinsDispensedManually(
                        self.address,
                        item.coin_type,
                        item.count,
                        value * item.count,
                        item.tube_count,
                    )
                )
        elif isinstance(item, SlugItem):
            self.emit(SlugsDetected(self.address, item.count))
        elif isinstance(item, ChangerStatus):
            self._on_status(item.code)

    def _on_deposit(self, item: CoinDeposited) -> None:
        if item.route is Route.REJECTED:
            self.emit(CoinRejected(self.address, item.coin_type))
            return
        if item.route is Route.NOT_USED:
            self._violation(f"coin type {item.coin_type} deposited with the unused route")
            return
        to_tube = item.route is Route.TUBE
        if to_tube:
            self._note_tube_count(item.coin_type, item.tube_count)
            if self._job is not None:
                self._job.tube_delta[item.coin_type] += 1
        if self._setup is not None and self._setup.is_token(item.coin_type):
            self.emit(TokenAccepted(self.address, item.coin_type, to_tube))
            return
        value = self._value(item.coin_type, "deposit")
        if value is not None:
            self.emit(CoinAccepted(self.address, item.coin_type, value, to_tube, item.tube_count))

    def _note_tube_count(self, coin_type: int, count: int) -> None:
        """Deposits and manual dispenses report the tube's new count: keep ``tubes`` current
        between TUBE STATUS reads, so nobody plans change from a stale view."""
        tubes = self._tubes
        if tubes is None or not 0 <= coin_type < len(tubes.counts):
            return
        counts = list(tubes.counts)
        counts[coin_type] = count
        self._tubes = replace(tubes, counts=tuple(counts))

    def _on_status(self, code: StatusCode | int) -> None:
        if code == StatusCode.ESCROW_REQUEST:
            self.emit(ReturnLeverPressed(self.address))
        elif code in FAULT_CODES:
            status = StatusCode(code)
            self._fault(FAULT_CODES[status], status.name.lower().replace("_", " "))
        elif code in _BUSY or code == StatusCode.CHANGER_WAS_RESET:
            return  # busy is read in handle_poll; reset by the base class
        else:
            self._fault("unknown_status", f"status code {int(code):#04x}")

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

    # --- steps --------------------------------------------------------------------------

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

    def _on_setup(self, reply: Ack | Data, now: float) -> None:
        setup = self._answer(Setup(), reply, ChangerSetup)
        self._setup = setup
        self._scaling = None
        reported = setup.currency
        if reported is None or reported.code != self.currency.code:
            self._fault(
                "currency_mismatch",
                f"changer reports currency code {setup.currency_code:04x}"
                f" ({reported or 'unknown'}), machine is set to {self.currency}",
            )
        else:
            try:
                self._scaling = setup.scaling(self.currency)
            except MoneyError as exc:
                self._fault("invalid_setup", str(exc))
        if setup.level >= 3:
            self._step(Identification(), self._on_identification)
        else:
            self._step(TubeStatus(), self._on_init_tubes)

    def _on_identification(self, reply: Ack | Data, now: float) -> None:
        ident = self._answer(Identification(), reply, ChangerIdentification)
        self._identification = ident
        wanted = ident.features & _WANTED_FEATURES

        def enabled(_reply: Ack | Data, _now: float) -> None:
            self._features = wanted
            if wanted & FEATURE_EXTENDED_DIAGNOSTIC:
                self._step(DiagnosticStatusRequest(), self._on_diagnostics)
            else:
                self._step(TubeStatus(), self._on_init_tubes)

        self._step(FeatureEnable(wanted), enabled)

    def _on_diagnostics(self, reply: Ack | Data, now: float) -> None:
        self._diagnostics = self._answer(DiagnosticStatusRequest(), reply, DiagnosticStatus)
        self._step(TubeStatus(), self._on_init_tubes)

    def _on_init_tubes(self, reply: Ack | Data, now: float) -> None:
        self._read_tubes(reply)
        job = self._job
        if job is not None and job.phase is Phase.INTERRUPTED and self._tubes is not None:
            self._job = None
            self._fault("payout_interrupted", "payout cut short; paid coins read from the tubes")
            self._complete(job, job.coins_from_tubes(self._tubes.counts))
        if self._scaling is None:
            return  # wrong currency or bad scaling: never accept coins
        setup = self._setup
        assert setup is not None

        def done(_reply: Ack | Data, when: float) -> None:
            self._accepting = self._wanted & setup.coin_types
            self.ready(when, ChangerInfo(setup, self._identification, self._features))

        self._step(self._coin_type_command(setup), done)

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

    # --- payout -------------------------------------------------------------------------

    def _start(self, job: PayoutJob) -> None:
        if self._job is not None:
            raise ChangerError("a payout is already in progress")
        self._job = job
        self._progress_units = None
        self._step(TubeStatus(), self._on_tubes_before)

    def _on_tubes_before(self, reply: Ack | Data, now: float) -> None:
        tubes = self._read_tubes(reply)
        job = self._job
        if job is None or job.phase is not Phase.READ_BEFORE:
            return
        job.before = tubes.counts
        commands: list[Dispense] | list[AlternativePayout]
        if job.alternative:
            if job.requested_units <= MAX_ALTERNATIVE:
                commands = [AlternativePayout(job.requested_units)]  # the changer picks
            else:
                commands = self._alternative_chunks(job, self._plan(job, tubes))
        else:
            if job.plan is None:
                plan = self._plan(job, tubes)
                job.plan = plan.counts() if plan else {}
            commands = dispense_commands(job.plan)
        job.commands = deque(commands)
        job.phase = Phase.IDLE_WAIT
        self._advance(now)

    def _plan(self, job: PayoutJob, tubes: TubeStatusAnswer) -> ChangePlan | None:
        """The best plan the tube counts allow (they are estimates; the payout tells)."""
        values = job.tube_values(self._setup.routing if self._setup else frozenset())
        try:
            stock = tubes_from(values, {n: tubes.counts[n] for n in values})
            return plan_best_effort(job.scaling.to_money(job.requested_units), stock)
        except (ChangeError, MoneyError) as exc:
            self._violation(f"cannot plan change from the tubes: {exc}")
            return None

    @staticmethod
    def _alternative_chunks(job: PayoutJob, plan: ChangePlan | None) -> list[AlternativePayout]:
        """ALTERNATIVE PAYOUT carries one byte: ask in groups of whole planned coins."""
        if plan is not None:
            try:
                values = job.tube_values(frozenset(range(COIN_TYPES)))
                units = alternative_payout_units(plan, values, job.scaling)
                return [AlternativePayout(u) for u in units if u]
            except (ChangeError, MoneyError):
                pass
        return alternative_commands(job.requested_units)

    def _advance(self, now: float) -> None:
        """Move the payout on after a POLL; nothing new goes out while the changer is busy."""
        job = self._job
        if job is None or self.state is not DeviceState.READY:
            return
        if job.phase is Phase.PAYING:
            if self._busy:
                if job.alternative:
                    self._step(PayoutValuePoll(), self._on_payout_value)
                return
            if now - job.sent_at < self.timing.busy_interval:
                return  # give the changer time to raise "payout busy"
            if job.alternative:
                job.phase = Phase.ASK_STATUS
                self._step(PayoutStatusRequest(), self._on_payout_status)
                return
            job.phase = Phase.IDLE_WAIT
        if job.phase is not Phase.IDLE_WAIT or self._busy:
            return
        if job.commands:
            command = job.commands.popleft()
            job.chunk_units = getattr(command, "units", 0)
            job.phase = Phase.SENT

            def acked(_reply: Ack | Data, when: float) -> None:
                job.phase = Phase.PAYING
                job.sent_at = when
                self.defer(when, self.timing.busy_interval)

            self._step(command, acked)
            return
        job.phase = Phase.READ_AFTER
        self._step(TubeStatus(), self._on_tubes_after)

    def _on_payout_value(self, reply: Ack | Data, now: float) -> None:
        if isinstance(reply, Data):
            self._progress_units = self._answer(PayoutValuePoll(), reply, PayoutValue).units

    def _on_payout_status(self, reply: Ack | Data, now: float) -> None:
        job = self._job
        if job is None or job.phase is not Phase.ASK_STATUS:
            return
        if isinstance(reply, Ack):  # still paying
            job.phase = Phase.PAYING
            self.defer(now, self.timing.busy_interval)
            return
        status = self._answer(PayoutStatusRequest(), reply, PayoutStatusAnswer)
        for n, count in enumerate(status.counts):
            job.reported[n] += count
        if job.units_of(status.counts) < job.chunk_units:
            job.commands.clear()  # the tubes could not make the rest either
        job.phase = Phase.IDLE_WAIT
        self._advance(now)

    def _on_tubes_after(self, reply: Ack | Data, now: float) -> None:
        tubes = self._read_tubes(reply)
        job = self._job
        if job is None or job.phase is not Phase.READ_AFTER:
            return
        self._job = None
        if job.alternative:
            coins = tuple(job.reported)
        else:
            # Level 2 has no payout report: what left the tubes is what was paid,
            # never more than was asked of each type.
            plan = job.plan or {}
            found = job.coins_from_tubes(tubes.counts)
            coins = tuple(min(found[n], plan.get(n, 0)) for n in range(COIN_TYPES))
        self._complete(job, coins)

    def _complete(self, job: PayoutJob, coins: tuple[int, ...]) -> None:
        requested = job.scaling.to_money(job.requested_units)
        paid = job.scaling.to_money(job.units_of(coins))
        self._progress_units = None
        self.emit(PayoutCompleted(self.address, requested, paid, coins))
