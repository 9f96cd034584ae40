"""What the application asks of a cashless reader: enable, vend, cancel, settle."""

from __future__ import annotations

from protocols.mdb.cashless import answers as a
from protocols.mdb.cashless import commands as c
from protocols.mdb.cashless.core import PendingVend, ReaderCore
from protocols.mdb.cashless.states import (
    VENDING,
    CashlessState,
    CashlessUsageError,
)
from protocols.mdb.message import Command
from protocols.mdb.wire import Ack, Data
from protocols.money import Money, MoneyError
from protocols.money import currency_to_mdb as _currency_code


class ReaderRequests(ReaderCore):
    """The application side. Calls that are illegal in the reader's state raise
    :class:`CashlessUsageError`."""

    # --- application side ---------------------------------------------------------

    def _require(self, ok: bool, what: str) -> None:
        if not ok:
            raise CashlessUsageError(
                f"{what} is not possible while {self.device} is {self._reader_state.value}"
            )

    def _units(self, money: Money) -> int:
        if self._scaling is None:
            raise CashlessUsageError(f"{self.device} has not reported its scaling yet")
        try:
            units = self._scaling.to_units(money)
        except MoneyError as exc:
            raise CashlessUsageError(str(exc)) from None
        limit = a.UNKNOWN_32 if self.expanded_currency else a.UNKNOWN_16
        if not 0 <= units <= limit:
            raise CashlessUsageError(f"{money} does not fit the reader's money format")
        return units

    @staticmethod
    def _check_item(item: int) -> None:
        if not 0 <= item <= 0xFFFF:
            raise CashlessUsageError(f"item number {item} is not 0..65535")

    def enable(self) -> None:
        """Let customers start sessions (now, or as soon as initialisation is done)."""
        self._want_enabled = True
        self._sync_enable()

    def disable(self) -> None:
        """Stop new sessions; a session in progress ends first."""
        self._want_enabled = False
        self._sync_enable()

    def vend_request(self, price: Money, item: int) -> None:
        """Ask the reader to approve ``price`` for ``item``; VendApproved or VendDenied follows.

        Legal in a session, or in ENABLED when the reader runs "always idle" (then the
        reader opens the session itself and no SessionBegan is reported).
        """
        always_idle = bool(self._features & a.FEATURE_ALWAYS_IDLE)
        state = self._reader_state
        self._require(
            state is CashlessState.SESSION_IDLE or (always_idle and state is CashlessState.ENABLED),
            "VEND REQUEST",
        )
        self._start_vend(price, item, negative=False)

    def negative_vend_request(self, amount: Money, item: int) -> None:
        """Level 3: the customer returns ``item`` and gets ``amount`` back on the card."""
        self._require(self._reader_state is CashlessState.SESSION_IDLE, "NEGATIVE VEND REQUEST")
        if not self._features & a.FEATURE_NEGATIVE_VEND:
            raise CashlessUsageError(f"{self.device} does not offer negative vend")
        self._start_vend(amount, item, negative=True)

    def _start_vend(self, price: Money, item: int, negative: bool) -> None:
        units = self._units(price)
        self._check_item(item)
        self._vend = PendingVend(units, item, negative)
        self._reader_state = CashlessState.NEGATIVE_VEND if negative else CashlessState.VEND
        wide = self.expanded_currency
        request: Command = (
            c.NegativeVendRequest(units, item, wide)
            if negative
            else c.VendRequest(units, item, wide)
        )
        self.queue(c.Poll(), self._after_poll)  # read resent items before the request
        self.queue(request, self._on_vend_request_sent)

    def _on_vend_request_sent(self, reply: Ack | Data, now: float) -> None:
        if self._vend is not None:
            self._vend.sent = True
        self._take(reply, now)

    def vend_cancel(self) -> None:
        """Withdraw a VEND REQUEST that was not approved yet; the reader answers VEND DENIED."""
        vend = self._vend
        self._require(
            self._reader_state in VENDING and vend is not None and not vend.approved,
            "VEND CANCEL",
        )
        assert vend is not None
        if not vend.cancel_sent:
            vend.cancel_sent = True
            self.queue(c.VendCancel(), self._on_step_answer)

    def vend_success(self, item: int) -> None:
        """The product was delivered: the reader keeps the approved amount."""
        vend = self._vend
        self._require(
            self._reader_state in VENDING and vend is not None and vend.approved, "VEND SUCCESS"
        )
        self._check_item(item)
        self.queue(c.VendSuccess(item), self._on_step_answer)
        self._end_vend()
        self._after_vend()

    def vend_failure(self) -> None:
        """The product was not delivered: the reader restores the funds."""
        vend = self._vend
        self._require(
            self._reader_state in VENDING and vend is not None and vend.approved, "VEND FAILURE"
        )
        assert vend is not None
        self._owe_refund(vend.amount)
        self.queue(c.VendFailure(), self._on_step_answer)
        self._end_vend()
        self._after_vend()

    def session_complete(self) -> None:
        """End the session; the reader confirms with END SESSION."""
        if self._reader_state is CashlessState.SESSION_ENDING:
            return
        self._require(self._reader_state is CashlessState.SESSION_IDLE, "SESSION COMPLETE")
        self._complete_session()

    def revalue_request(self, amount: Money) -> None:
        """Level 2+: add ``amount`` to the customer's card."""
        level = self._config.level if self._config else 0
        self._require(
            self._reader_state is CashlessState.SESSION_IDLE and level >= 2, "REVALUE REQUEST"
        )
        units = self._units(amount)
        self._revalue = amount
        self._reader_state = CashlessState.REVALUE
        self.queue(c.RevalueRequest(units, self.expanded_currency), self._on_step_answer)

    def cash_sale(self, price: Money, item: int) -> bool:
        """Report a sale paid in cash; False if the reader does not track cash sales."""
        self._require(
            self._reader_state
            in (CashlessState.DISABLED, CashlessState.ENABLED, CashlessState.SESSION_IDLE),
            "CASH SALE",
        )
        if not self.supports_cash_sale:
            return False
        units = self._units(price)
        self._check_item(item)
        code = _currency_code(self.currency) if self.expanded_currency else None
        self.queue(c.CashSale(units, item, code), self._on_step_answer)
        return True

    def reader_cancel(self) -> None:
        """READER CANCEL: abort what the reader is doing on its own (answered CANCELLED)."""
        self._require(self._reader_state is CashlessState.ENABLED, "READER CANCEL")
        self.queue(c.ReaderCancel(), self._on_step_answer)
