"""The VMC's state machine for one cashless reader (#1 at 0x10 or #2 at 0x60), levels 1-3.

Initialisation (reference mdb.md 6.1): RESET, POLL until JUST RESET, SETUP config
(READER CONFIG may come in the answer or on a later POLL), SETUP max/min prices,
EXPANSION REQUEST ID (PERIPHERAL ID likewise), and on Level 3 OPTIONAL FEATURE
ENABLED. When the reader offers the 32-bit monetary format we turn it on, switch
to the expanded codec and send the prices again in 32-bit form. The reader is then
READY and DISABLED; :meth:`CashlessMaster.enable` lets customers start sessions.

Session flow (reader states, spec 5.3)::

    DISABLED <-> ENABLED --BEGIN SESSION--> SESSION_IDLE --vend_request--> VEND
    VEND --VEND DENIED / vend_success / vend_failure--> SESSION_IDLE
    SESSION_IDLE --session_complete--> SESSION_ENDING --END SESSION--> ENABLED

Robustness choices, all because real readers and VMCs deviate (spec 5.3, 6.2):

* Every answer is read as POLL items whatever command it answers, so a reader may
  send VEND DENIED, END SESSION or PERIPHERAL ID directly or on a later POLL.
* Items resent after a lost ACK are ignored by state: a second BEGIN SESSION in a
  session, a second VEND APPROVED for an approved vend. Before each VEND REQUEST
  one POLL is sent, so a stale approval still queued in the reader is read (and
  ignored) before the new request can be approved.
* VEND APPROVED that crosses our VEND CANCEL: we answer VEND FAILURE, so the
  reader restores the funds, and report the vend as denied (cancelled). Nothing is
  dispensed for it. VEND SUCCESS is only ever sent by :meth:`vend_success`.
* SESSION CANCEL REQUEST is answered with SESSION COMPLETE by the master itself
  (after the vend in progress, if any, is settled).
* A reader that never sends END SESSION after SESSION COMPLETE is considered back
  in ENABLED after its non-response time (``SessionEnded(confirmed=False)``).
* CMD OUT OF SEQUENCE resets and re-initialises the reader; an unexpected JUST
  RESET does the same (via :class:`DeviceMaster`). Either way an open session is
  reported as :class:`SessionAborted`, with any approved but unsettled amount, so
  the application neither charges nor dispenses for it.
"""

from __future__ import annotations

from dataclasses import replace

from protocols.mdb.cashless import answers as a
from protocols.mdb.cashless import commands as c
from protocols.mdb.cashless import events as e
from protocols.mdb.cashless.codec import CASHLESS_EXPANDED
from protocols.mdb.cashless.core import VMC_IDENTITY, VendPhase
from protocols.mdb.cashless.requests import ReaderRequests
from protocols.mdb.cashless.states import (
    IN_SESSION,
    VENDING,
    CashlessState,
    CashlessUsageError,
)
from protocols.mdb.device import DeviceState
from protocols.mdb.errors import DecodeError
from protocols.mdb.message import Command
from protocols.mdb.wire import Ack, Data
from protocols.money import MdbScaling, Money, MoneyError, currency_from_mdb
from protocols.money import currency_to_mdb as _currency_code

__all__ = ["VMC_IDENTITY", "CashlessMaster"]


class CashlessMaster(ReaderRequests):
    """Drives one cashless reader; events come out of :meth:`drain_events`."""

    # --- DeviceMaster hooks -------------------------------------------------------

    def reset_command(self) -> Command:
        return c.Reset()

    def poll_command(self) -> Command:
        return c.Poll()

    def poll_shows_reset(self, reply: Ack | Data) -> bool:
        if isinstance(reply, Ack):
            return False
        if self.state is DeviceState.INITIALISING and self._phase is VendPhase.CONFIG:
            # A JUST RESET resent after a lost ACK while we wait for READER CONFIG:
            # the reader is where we think it is (and a real reset shows up as a
            # missing READER CONFIG, which restarts the init anyway).
            return False
        return any(isinstance(i, a.JustReset) for i in self._decode(reply).items)

    def start_init(self, now: float) -> None:
        self._clear_reader()
        self.queue(c.SetupConfig(self.vmc_level), self._on_init_answer)

    def handle_poll(self, reply: Ack | Data, now: float) -> None:
        self._take(reply, now)
        if self.state is DeviceState.INITIALISING:
            self._phase_polls += 1
            self._advance_init(now)
        elif (
            self._reader_state is CashlessState.SESSION_ENDING
            and self._end_deadline is not None
            and now >= self._end_deadline
        ):
            self._close_session(confirmed=False)

    def on_lost(self, reason: str, now: float) -> None:
        self._abort_session(reason)
        self._clear_reader()

    # --- initialisation -----------------------------------------------------------

    def _on_init_answer(self, reply: Ack | Data, now: float) -> None:
        self._take(reply, now)
        self._advance_init(now)

    def _advance_init(self, now: float) -> None:
        if self._phase is VendPhase.CONFIG:
            if self._config is None:
                if self._phase_polls > self.timing.reset_polls:
                    self._fault("no_reader_config", "the reader never sent READER CONFIG")
                    self.restart(now, "no READER CONFIG")
                return
            if not self._accept_config(self._config):
                self._phase = VendPhase.FAULT
                return
            self._phase = VendPhase.IDENTITY
            self._phase_polls = 0
            self.queue(self._prices(wide=False), self._on_step_answer)
            self.queue(c.ExpansionRequestId(*VMC_IDENTITY), self._on_init_answer)
        elif self._phase is VendPhase.IDENTITY:
            # Some readers never deliver PERIPHERAL ID; after enough POLLs carry on without.
            if self._peripheral is None and self._phase_polls < self.timing.reset_polls:
                return
            wanted = self._wanted_features()
            if wanted:
                self._phase = VendPhase.FEATURES
                self.queue(
                    c.OptionalFeatureEnabled(wanted),
                    lambda reply, t: self._on_features_enabled(wanted, reply, t),
                )
            else:
                self._finish_init(now)

    def _accept_config(self, config: a.ReaderConfig) -> bool:
        reported = currency_from_mdb(config.currency_code)
        if reported != self.currency:
            self._fault(
                "currency_mismatch",
                f"reader works in {reported or hex(config.currency_code)}, "
                f"machine in {self.currency}",
            )
            return False
        try:
            self._scaling = MdbScaling(config.scale_factor, config.decimal_places, self.currency)
        except MoneyError as exc:
            self._fault("bad_reader_config", str(exc))
            return False
        if config.max_response_time:
            self.timing = replace(self._base_timing, non_response=float(config.max_response_time))
        return True

    def _wanted_features(self) -> int:
        offered = self._peripheral.features if self._peripheral else None
        if self.vmc_level < 3 or self._config is None or self._config.level < 3 or not offered:
            return 0
        want = a.FEATURE_32BIT | a.FEATURE_NEGATIVE_VEND
        if self._wants_always_idle:
            want |= a.FEATURE_ALWAYS_IDLE
        return offered & want

    def _on_features_enabled(self, features: int, reply: Ack | Data, now: float) -> None:
        self._take(reply, now)
        self._features = features
        if features & a.FEATURE_32BIT:
            self._codec = CASHLESS_EXPANDED
            self.queue(self._prices(wide=True), self._on_final_prices)
        else:
            self._finish_init(now)

    def _on_final_prices(self, reply: Ack | Data, now: float) -> None:
        self._take(reply, now)
        self._finish_init(now)

    def _finish_init(self, now: float) -> None:
        assert self._config is not None
        self._phase = VendPhase.DONE
        self._reader_state = CashlessState.DISABLED
        info = e.CashlessInfo(
            self._config, self._peripheral, self._features, self.expanded_currency
        )
        self.ready(now, info)
        self._sync_enable()

    def _prices(self, wide: bool) -> c.SetupPrices:
        top = a.UNKNOWN_32 if wide else a.UNKNOWN_16
        try:
            high = top if self.max_price is None else min(self._units(self.max_price), top)
            low = 0 if self.min_price is None else min(self._units(self.min_price), top)
        except CashlessUsageError:
            high, low = top, 0  # limits the reader cannot express: tell it "unknown"
        return c.SetupPrices(high, low, _currency_code(self.currency) if wide else None)

    # --- reading answers ----------------------------------------------------------

    def _decode(self, reply: Data) -> a.PollAnswer:
        return self._codec.decode_answer(c.Poll(), reply.payload)

    def _on_step_answer(self, reply: Ack | Data, now: float) -> None:
        self._take(reply, now)

    def _take(self, reply: Ack | Data, now: float) -> None:
        if isinstance(reply, Ack):
            return
        for item in self._decode(reply).items:
            if self._on_item(item, now):
                return

    def _on_item(self, item: a.Item, now: float) -> bool:
        """React to one item; True = stop reading this answer (the reader is being reset)."""
        match item:
            case a.ReaderConfig():
                if self._phase is VendPhase.CONFIG:
                    self._config = item
            case a.PeripheralId():
                if self._peripheral is None:
                    self._peripheral = item
            case a.DisplayRequest():
                self.emit(e.DisplayRequested(self.address, item.text, item.seconds_tenths / 10))
            case a.BeginSession():
                self._on_begin_session(item)
            case a.SessionCancelRequest():
                self._on_cancel_request()
            case a.VendApproved():
                self._on_vend_approved(item)
            case a.VendDenied():
                self._on_vend_denied()
            case a.EndSession():
                self._on_end_session()
            case a.Cancelled():
                self.emit(e.ReaderCancelled(self.address))
            case a.Malfunction():
                self._on_malfunction(item)
            case a.RevalueApproved() | a.RevalueDenied():
                self._on_revalue_result(approved=isinstance(item, a.RevalueApproved))
            case a.CmdOutOfSequence():
                self.emit(e.OutOfSequenceReported(self.address, item.status))
                self.restart(now, "command out of sequence")
                return True
            case _:
                # JUST RESET is the base class's business; time/date, data entry,
                # revalue limit and diagnostics need nothing from us.
                pass
        return False

    def _money(self, units: int) -> Money:
        if self._scaling is None:
            raise DecodeError("money from a reader that has not sent READER CONFIG")
        try:
            return self._scaling.to_money(units)
        except MoneyError as exc:
            raise DecodeError(str(exc)) from None

    def _on_begin_session(self, item: a.BeginSession) -> None:
        if self._phase is not VendPhase.DONE or self._reader_state in IN_SESSION:
            return  # not ours to start, or a resend after a lost ACK
        funds = None if item.funds is None else self._money(item.funds)
        self._clear_session()
        self._refund_owed = False
        self._session_funds = funds
        self._reader_state = CashlessState.SESSION_IDLE
        self.emit(
            e.SessionBegan(self.address, funds, item.media_id, item.payment_type, item.payment_data)
        )
        if not self._want_enabled:
            # Disable and BEGIN SESSION crossed: end the session at once.
            self._complete_session()

    def _on_cancel_request(self) -> None:
        state = self._reader_state
        if state not in IN_SESSION or state is CashlessState.SESSION_ENDING or self._close_after:
            return
        self.emit(e.SessionCancelRequested(self.address))
        if state is CashlessState.SESSION_IDLE:
            self._complete_session()
            return
        self._close_after = True
        vend = self._vend
        if vend is not None and not vend.approved and not vend.cancel_sent:
            self.vend_cancel()

    def _on_vend_approved(self, item: a.VendApproved) -> None:
        vend = self._vend
        if vend is None or not vend.sent or vend.approved or self._reader_state not in VENDING:
            return  # stale or resent approval
        amount = None if item.amount is None else self._money(item.amount)
        if vend.cancel_sent:
            # The approval crossed our VEND CANCEL; nothing will be dispensed.
            self.queue(c.VendFailure(), self._on_step_answer)
            self._owe_refund(amount)
            self._end_vend()
            self.emit(e.VendDenied(self.address, vend.item, cancelled=True))
            self._after_vend()
            return
        vend.approved = True
        vend.amount = amount
        self.emit(e.VendApproved(self.address, amount, vend.item, vend.negative))

    def _on_vend_denied(self) -> None:
        vend = self._vend
        if vend is None or not vend.sent or vend.approved:
            return
        self._end_vend()
        self.emit(e.VendDenied(self.address, vend.item, cancelled=vend.cancel_sent))
        self._after_vend()

    def _on_end_session(self) -> None:
        state = self._reader_state
        if state in (CashlessState.SESSION_ENDING, CashlessState.SESSION_IDLE):
            self._close_session(confirmed=True)
        elif state in IN_SESSION:
            self._abort_session("reader ended the session during a vend")
            self._reader_state = CashlessState.ENABLED
            self._sync_enable()

    def _on_malfunction(self, item: a.Malfunction) -> None:
        if item.kind == "refund_error" and self._refund_owed:
            self.emit(e.RefundFailed(self.address, self._refund_amount, item.code))
            self._refund_owed = False
            return
        self._fault(item.kind, f"MALFUNCTION {item.code:#04x}")

    def _on_revalue_result(self, approved: bool) -> None:
        if self._reader_state is not CashlessState.REVALUE or self._revalue is None:
            return
        amount, self._revalue = self._revalue, None
        self._reader_state = CashlessState.SESSION_IDLE
        if approved:
            if self._session_funds is not None:
                self._session_funds += amount
            self.emit(e.RevalueApproved(self.address, amount))
        else:
            self.emit(e.RevalueDenied(self.address, amount))
        self._after_vend()
