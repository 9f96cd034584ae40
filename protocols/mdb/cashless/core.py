"""Shared state of a cashless reader's state machine: configuration, session, vend.

:class:`ReaderCore` holds what initialisation and answer handling
(:mod:`protocols.mdb.cashless.master`) and the application's requests
(:mod:`protocols.mdb.cashless.requests`) read and write.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from protocols.mdb.cashless import answers as a
from protocols.mdb.cashless import commands as c
from protocols.mdb.cashless import events as e
from protocols.mdb.cashless.codec import CASHLESS, CashlessCodec
from protocols.mdb.cashless.states import (
    IN_SESSION,
    CashlessState,
)
from protocols.mdb.device import DeviceMaster, Timing
from protocols.mdb.events import DeviceFault
from protocols.mdb.message import Command
from protocols.mdb.wire import Ack, Data
from protocols.money import Currency, MdbScaling, Money

# How the VMC introduces itself in EXPANSION REQUEST ID.
VMC_IDENTITY = ("VFL", "000000000001", "vendfleet", 0x0100)


class VendPhase(enum.Enum):
    CONFIG = "config"  # SETUP config sent, waiting for READER CONFIG
    IDENTITY = "identity"  # prices and REQUEST ID sent, waiting for PERIPHERAL ID
    FEATURES = "features"  # OPTIONAL FEATURE ENABLED sent
    DONE = "done"
    FAULT = "fault"  # the reader cannot be used (currency, scaling); never enabled


@dataclass(slots=True)
class PendingVend:
    price: int  # device units
    item: int
    negative: bool
    sent: bool = False  # the reader has our VEND REQUEST
    approved: bool = False
    amount: Money | None = None
    cancel_sent: bool = False


class ReaderCore(DeviceMaster):
    """State and bookkeeping common to every part of the reader state machine."""

    def __init__(  # noqa: PLR0917 - the spec'd constructor, currency first
        self,
        currency: Currency,
        address: int = 0x10,
        timing: Timing | None = None,
        vmc_level: int = 3,
        max_price: Money | None = None,
        min_price: Money | None = None,
        *,
        always_idle: bool = False,
    ) -> None:
        if address not in c.ADDRESSES:
            raise ValueError(f"{address:#04x} is not a cashless reader address (0x10 or 0x60)")
        if vmc_level not in (1, 2, 3):
            raise ValueError(f"VMC feature level must be 1, 2 or 3, got {vmc_level}")
        super().__init__(address, timing)
        self.device = "cashless1" if address == 0x10 else "cashless2"
        self.currency = currency
        self.vmc_level = vmc_level
        self.max_price = max_price
        self.min_price = min_price
        self._wants_always_idle = always_idle
        self._base_timing = self.timing
        self._codec: CashlessCodec = CASHLESS
        self._want_enabled = False
        self._clear_reader()
        self._clear_session()
        # A VEND FAILURE was sent: a refund-error MALFUNCTION now means the refund failed.
        self._refund_owed = False
        self._refund_amount: Money | None = None

    def _clear_reader(self) -> None:
        self._reader_state = CashlessState.INACTIVE
        self._phase = VendPhase.CONFIG
        self._phase_polls = 0
        self._config: a.ReaderConfig | None = None
        self._peripheral: a.PeripheralId | None = None
        self._features = 0
        self._scaling: MdbScaling | None = None
        self._toggle_pending = False
        self._codec = CASHLESS
        self.timing = self._base_timing

    def _clear_session(self) -> None:
        self._session_funds: Money | None = None
        self._vend: PendingVend | None = None
        self._revalue: Money | None = None
        self._close_after = False
        self._end_deadline: float | None = None

    # --- properties ---------------------------------------------------------------

    @property
    def reader_state(self) -> CashlessState:
        """The reader's session state (``state`` is the link life cycle of DeviceMaster)."""
        return self._reader_state

    @property
    def config(self) -> a.ReaderConfig | None:
        return self._config

    @property
    def peripheral_id(self) -> a.PeripheralId | None:
        return self._peripheral

    @property
    def features(self) -> int:
        """Level-3 option bits we enabled (``answers.FEATURE_*``)."""
        return self._features

    @property
    def expanded_currency(self) -> bool:
        return self._codec.expanded

    @property
    def refund_capable(self) -> bool:
        return self._config is not None and self._config.refund_capable

    @property
    def multivend_capable(self) -> bool:
        return self._config is not None and self._config.multivend_capable

    @property
    def supports_cash_sale(self) -> bool:
        return self._config is not None and self._config.supports_cash_sale

    @property
    def session_funds(self) -> Money | None:
        return self._session_funds

    # --- answer reading (CashlessMaster) ---------------------------------------------

    def _on_step_answer(self, reply: Ack | Data, now: float) -> None:
        """Read a command's answer as POLL items (implemented by the master)."""
        raise NotImplementedError

    def _take(self, reply: Ack | Data, now: float) -> None:
        """Read a POLL answer's items (implemented by the master)."""
        raise NotImplementedError

    # --- session bookkeeping ------------------------------------------------------

    def _owe_refund(self, amount: Money | None) -> None:
        self._refund_owed = True
        self._refund_amount = amount

    def _end_vend(self) -> None:
        self._vend = None
        self._reader_state = CashlessState.SESSION_IDLE

    def _after_vend(self) -> None:
        if self._close_after:
            self._complete_session()

    def _complete_session(self) -> None:
        self._reader_state = CashlessState.SESSION_ENDING
        self._close_after = False
        self.queue(c.SessionComplete(), self._on_session_complete_sent)

    def _on_session_complete_sent(self, reply: Ack | Data, now: float) -> None:
        self._take(reply, now)  # some readers answer END SESSION right away
        if self._reader_state is CashlessState.SESSION_ENDING:
            self._end_deadline = now + self.timing.non_response

    def _close_session(self, confirmed: bool) -> None:
        self._clear_session()
        self._reader_state = CashlessState.ENABLED
        self.emit(e.SessionEnded(self.address, confirmed))
        self._sync_enable()

    def _abort_session(self, reason: str) -> None:
        if self._reader_state not in IN_SESSION:
            return
        vend = self._vend
        approved = vend.amount if vend is not None and vend.approved else None
        self.emit(e.SessionAborted(self.address, reason, approved, vend is not None))
        self._clear_session()

    def _sync_enable(self) -> None:
        """Bring the reader to the enable state the application asked for."""
        if self._phase is not VendPhase.DONE or self._toggle_pending:
            return
        state = self._reader_state
        if self._want_enabled and state is CashlessState.DISABLED:
            command: Command = c.ReaderEnable()
            target = CashlessState.ENABLED
        elif not self._want_enabled and state is CashlessState.ENABLED:
            command, target = c.ReaderDisable(), CashlessState.DISABLED
        else:
            return
        self._toggle_pending = True

        def done(reply: Ack | Data, now: float) -> None:
            self._toggle_pending = False
            self._take(reply, now)
            if self._reader_state in (CashlessState.DISABLED, CashlessState.ENABLED):
                self._reader_state = target
            self._sync_enable()

        self.queue(command, done)

    def _fault(self, code: str, detail: str) -> None:
        self.emit(DeviceFault(self.address, self.device, code, detail))
