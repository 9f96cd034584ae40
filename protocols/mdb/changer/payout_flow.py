"""Paying change: Level 3 alternative payout or Level 2 DISPENSE plans, and the
tube readings before and after that prove what left the changer."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from protocols.change import (
    ChangeError,
    ChangePlan,
    alternative_payout_units,
    plan_best_effort,
    tubes_from,
)
from protocols.mdb.changer.codec import (
    COIN_TYPES,
    TOKEN_CREDIT,
    AlternativePayout,
    Dispense,
    PayoutStatusAnswer,
    PayoutStatusRequest,
    PayoutValue,
    PayoutValuePoll,
    TubeStatus,
    TubeStatusAnswer,
)
from protocols.mdb.changer.core import ChangerCore, ChangerError
from protocols.mdb.changer.events import (
    PayoutCompleted,
)
from protocols.mdb.changer.payout import (
    MAX_ALTERNATIVE,
    PayoutJob,
    Phase,
    alternative_commands,
    dispense_commands,
)
from protocols.mdb.device import DeviceState
from protocols.mdb.wire import Ack, Data
from protocols.money import Money, MoneyError


class PayoutFlow(ChangerCore):
    """Payout requests and the steps that carry them out."""

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
