"""What a cashless reader's state machine tells the application (past-tense nouns).

Amounts are :class:`Money`, converted from device units by the reader's
:class:`~protocols.money.MdbScaling`. Faults that need no session handling are the
shared :class:`~protocols.mdb.events.DeviceFault` with stable codes (the
malfunction kinds of :data:`~protocols.mdb.cashless.answers.MALFUNCTION_KINDS`).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.mdb.cashless.answers import PeripheralId, ReaderConfig
from protocols.mdb.events import MdbEvent
from protocols.mdb.message import Message
from protocols.money import Money


@dataclass(frozen=True, slots=True)
class CashlessInfo(Message):
    """What the reader told us during initialisation (the ``DeviceOnline`` info)."""

    config: ReaderConfig
    peripheral_id: PeripheralId | None
    features: int
    expanded_currency: bool


@dataclass(frozen=True, slots=True)
class SessionBegan(MdbEvent):
    """A customer presented a card or phone. ``funds`` None = the reader does not say."""

    funds: Money | None
    media_id: int | None = None
    payment_type: int | None = None
    payment_data: int | None = None


@dataclass(frozen=True, slots=True)
class VendApproved(MdbEvent):
    """The reader approved the vend; ``amount`` None = no amount given (test vend).

    The application now dispenses and reports :meth:`vend_success` or :meth:`vend_failure`.
    ``negative`` marks the approval of a NEGATIVE VEND REQUEST (credit to the customer).
    """

    amount: Money | None
    item: int
    negative: bool = False


@dataclass(frozen=True, slots=True)
class VendDenied(MdbEvent):
    """No vend: the reader refused, or confirmed our VEND CANCEL (``cancelled``)."""

    item: int
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class SessionCancelRequested(MdbEvent):
    """The reader asked to end the session (customer cancelled, time-out); we complete it."""


@dataclass(frozen=True, slots=True)
class SessionEnded(MdbEvent):
    """The session is over. ``confirmed`` False = the reader never sent END SESSION."""

    confirmed: bool = True


@dataclass(frozen=True, slots=True)
class SessionAborted(MdbEvent):
    """The session died without a normal end (reader reset, out of sequence, offline).

    ``approved`` is the amount of a vend the reader had approved but that was never
    settled with VEND SUCCESS / VEND FAILURE: do not charge it, do not dispense for it.
    """

    reason: str
    approved: Money | None = None
    vend_pending: bool = False


@dataclass(frozen=True, slots=True)
class ReaderCancelled(MdbEvent):
    """The reader confirmed a READER CANCEL."""


@dataclass(frozen=True, slots=True)
class RevalueApproved(MdbEvent):
    amount: Money


@dataclass(frozen=True, slots=True)
class RevalueDenied(MdbEvent):
    amount: Money


@dataclass(frozen=True, slots=True)
class DisplayRequested(MdbEvent):
    """The reader wants ``text`` on the machine's display for ``seconds``."""

    text: str
    seconds: float


@dataclass(frozen=True, slots=True)
class RefundFailed(MdbEvent):
    """After our VEND FAILURE the reader could not restore the customer's funds."""

    amount: Money | None
    code: int


@dataclass(frozen=True, slots=True)
class OutOfSequenceReported(MdbEvent):
    """The reader rejected a command as illegal in its state; we reset and re-initialise it."""

    status: int | None
