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

from protocols.mdb.changer.codec import (
    COIN_TYPES,
    FEATURE_ALTERNATIVE_PAYOUT,
    FEATURE_EXTENDED_DIAGNOSTIC,
    ChangerIdentification,
    ChangerSetup,
    DiagnosticStatus,
    DiagnosticStatusRequest,
    FeatureEnable,
    Identification,
    Poll,
    Reset,
    Setup,
    TubeStatus,
)
from protocols.mdb.changer.core import ChangerError
from protocols.mdb.changer.events import (
    FAULT_CODES,
    ChangerInfo,
    CoinAccepted,
    CoinRejected,
    CoinsDispensedManually,
    ReturnLeverPressed,
    SlugsDetected,
    TokenAccepted,
)
from protocols.mdb.changer.payout import Phase
from protocols.mdb.changer.payout_flow import PayoutFlow
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
from protocols.mdb.errors import DecodeError
from protocols.mdb.message import Command
from protocols.mdb.wire import Ack, Data
from protocols.money import MoneyError

_BUSY = (StatusCode.PAYOUT_BUSY, StatusCode.CHANGER_BUSY)
_WANTED_FEATURES = FEATURE_ALTERNATIVE_PAYOUT | FEATURE_EXTENDED_DIAGNOSTIC

__all__ = ["ChangerError", "ChangerMaster"]


class ChangerMaster(PayoutFlow):
    """Coin changer at address 0x08. Application calls raise :class:`ChangerError`."""

    device = "changer"
    RESEND_WINDOW = 0.25  # seconds; see the module docstring

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

    # --- initialisation steps ---------------------------------------------------------

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
