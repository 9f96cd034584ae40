"""The VMC's state machine for one bill validator (MDB address 0x30), levels 1 and 2.

Initialisation (reference mdb.md 6.1): RESET, POLL until "validator was reset", SETUP,
identification (37 00 on level 1; 37 02 then FEATURE ENABLE on level 2), STACKER,
then BILL TYPE with whatever the application last asked for (disabled until
:meth:`BillValidatorMaster.enable`), then READY. The same sequence runs again after
an unexpected reset or after the validator was offline, so enables come back by
themselves.

Money rules:

* Credit (:class:`BillStacked`) only when the validator reports a bill stacked (or
  routed to its recycler). :class:`BillEscrowed` is never credit.
* A validator that returns an escrowed bill by itself (its escrow time-out) reports
  "returned"; the VMC never waits for a "stacked" that does not come.
* Duplicates: a peripheral that missed our ACK sends the *same* POLL data again on
  the next POLL. So a POLL answer byte-identical to the previous POLL answer is a
  resend: its bill items are ignored (status items are idempotent and still read).
  A genuinely new answer can only repeat the old one byte for byte if a whole new
  bill cycle (insert, validate, stack: over a second) fits between two POLLs. With
  polls every 25-200 ms that cannot happen; it can if the bus stalls for longer
  than a bill cycle (long retries), and then a second identical bill stacked
  *without escrow* would be missed (under-credit, never double credit). Escrowed
  bills are not affected: each one shows its own escrow item first.
* A bill that arrives in escrow just after ``disable()`` is still reported as
  :class:`BillEscrowed`; the application decides (usually ``return_bill()``).
* A reset or loss of the device while a bill is in escrow ends the escrow: the
  validator gives the bill back, so :class:`BillReturned` (reason
  ``escrow_aborted``) is reported and nothing is credited. If we had already told
  it to stack and no outcome came, the bill may or may not be in the cash box:
  that is reported as DeviceFault ``escrow_outcome_unknown``, without credit,
  for the cash count to settle.
"""

from __future__ import annotations

from protocols.mdb.bill.events import (
    BAD_SETUP,
    CURRENCY_MISMATCH,
    ESCROW_OUTCOME_UNKNOWN,
    FAULT_CODES,
    INVALID_ESCROW_REQUEST,
    STACKER_FULL,
    UNVALUED_BILL_STACKED,
    BillEscrowed,
    BillRejected,
    BillReturned,
    BillStacked,
    BillValidatorInfo,
    EscrowedBillRemoved,
    RecyclerBillMoved,
    StackerRead,
)
from protocols.mdb.bill.messages import (
    ADDRESS,
    BILL_TYPES,
    BillIdentification,
    BillRouted,
    BillRouting,
    BillSetup,
    BillType,
    DisabledBillAttempts,
    Escrow,
    FeatureEnable,
    IdentificationL1,
    IdentificationL2,
    Poll,
    PollItem,
    RecyclerStatus,
    Reset,
    Setup,
    Stacker,
    StackerAnswer,
    StatusCode,
    ValidatorStatus,
    decode_identification,
    decode_poll,
    decode_setup,
    decode_stacker,
)
from protocols.mdb.device import DeviceMaster, DeviceState, Timing
from protocols.mdb.errors import DecodeError, MdbError
from protocols.mdb.events import DeviceFault, ProtocolViolation
from protocols.mdb.message import Command
from protocols.mdb.wire import Ack, Data
from protocols.money import Currency, Money, MoneyError

DEFAULT_TIMING = Timing(non_response=5.0)
# Level 2 options we switch on with FEATURE ENABLE: none yet (no FTL, no recycling).
WANTED_FEATURES = 0
# Bill items whose customer money went into the machine.
_CREDIT_ROUTES = (BillRouting.STACKED, BillRouting.TO_RECYCLER)
_RECYCLER_ROUTES = (
    BillRouting.TO_RECYCLER_MANUAL,
    BillRouting.MANUAL_DISPENSE,
    BillRouting.RECYCLER_TO_CASHBOX,
)
# Statuses that are state, not events: read even in a resent answer.
_INFORMATIONAL = (
    StatusCode.VALIDATOR_BUSY,
    StatusCode.VALIDATOR_WAS_RESET,
    StatusCode.VALIDATOR_DISABLED,
)


class BillValidatorError(MdbError):
    """The application asked for something the validator cannot do right now."""


class NoBillInEscrowError(BillValidatorError):
    """stack() / return_bill() with no bill in escrow, or with the decision already sent."""


class NotReadyError(BillValidatorError):
    """A command that needs an initialised validator."""


class BillValidatorMaster(DeviceMaster):
    """One bill validator seen from the VMC. See the module docstring for the rules."""

    device = "bill"

    def __init__(
        self,
        currency: Currency,
        timing: Timing | None = None,
        *,
        stacker_interval: float = 30.0,
    ) -> None:
        super().__init__(ADDRESS, timing or DEFAULT_TIMING)
        self.currency = currency
        self.stacker_interval = stacker_interval
        self._setup: BillSetup | None = None
        self._identification: BillIdentification | None = None
        self._stacker: StackerAnswer | None = None
        self._values: dict[int, Money] = {}
        self._blocked: str | None = None  # a SETUP we refuse to work with
        # What the application wants; re-sent after every (re-)initialisation.
        self._accepting = False
        self._want_types: frozenset[int] | None = None  # None = every type with a value
        self._want_escrow = True
        # The bill in escrow, and what we decided for it.
        self._escrowed: int | None = None
        self._decision: bool | None = None  # True = stack, False = return
        self._decision_sent = False
        self._busy = False
        self._previous_poll: bytes | None = None
        self._resend = False
        self._faults: frozenset[str] = frozenset()
        self._next_stacker_at = 0.0

    # --- application side ---------------------------------------------------------

    @property
    def setup(self) -> BillSetup | None:
        return self._setup

    @property
    def identification(self) -> BillIdentification | None:
        return self._identification

    @property
    def level(self) -> int | None:
        return self._setup.level if self._setup else None

    @property
    def bill_values(self) -> dict[int, Money]:
        """Value of each bill type the validator knows, from its SETUP."""
        return dict(self._values)

    @property
    def escrowed(self) -> int | None:
        """Bill type held in escrow, or None."""
        return self._escrowed

    @property
    def stacker_full(self) -> bool:
        return bool(self._stacker and self._stacker.full)

    @property
    def faults(self) -> frozenset[str]:
        """Fault codes in the last POLL answer (jam, cash box out...)."""
        return self._faults

    def enable(self, bill_types: frozenset[int] | None = None, escrow: bool = True) -> None:
        """Accept ``bill_types`` (None = every type with a value); hold them in escrow if asked."""
        if bill_types is not None:
            bad = sorted(t for t in bill_types if not 0 <= t < BILL_TYPES)
            if bad:
                raise ValueError(f"bill types must be 0..{BILL_TYPES - 1}, got {bad}")
        self._accepting = True
        self._want_types = None if bill_types is None else frozenset(bill_types)
        self._want_escrow = escrow
        self._push_enables()

    def disable(self) -> None:
        self._accepting = False
        self._push_enables()

    def stack(self) -> None:
        """Keep the escrowed bill; credit follows when the validator reports it stacked."""
        self._decide(stack=True)

    def return_bill(self) -> None:
        """Give the escrowed bill back to the customer."""
        self._decide(stack=False)

    def read_stacker(self) -> None:
        """Ask for the stacker count; a :class:`StackerRead` event follows."""
        if not self.is_ready:
            raise NotReadyError("the bill validator is not ready")
        self.queue(Stacker(), self._on_stacker_asked)

    # --- DeviceMaster hooks -------------------------------------------------------

    def reset_command(self) -> Command:
        self._previous_poll = None  # a reset drops whatever the validator meant to resend
        return Reset()

    def poll_command(self) -> Command:
        return Poll()

    def poll_shows_reset(self, reply: Ack | Data) -> bool:
        payload = reply.payload if isinstance(reply, Data) else b""
        self._resend = bool(payload) and payload == self._previous_poll
        self._previous_poll = payload
        # Every bill validator POLL item is one byte, so a 06 byte is the reset status.
        return not self._resend and StatusCode.VALIDATOR_WAS_RESET in payload

    def start_init(self, now: float) -> None:
        self._identification = None
        self._stacker = None
        self.queue(Setup(), self._on_setup)

    def on_lost(self, reason: str, now: float) -> None:
        if self._escrowed is not None:
            bill = self._escrowed
            if self._decision is True and self._decision_sent:
                self._fault(
                    ESCROW_OUTCOME_UNKNOWN,
                    f"bill type {bill} was being stacked when the validator was lost ({reason})",
                )
            else:
                self.emit(
                    BillReturned(self.address, bill, self._values.get(bill), "escrow_aborted")
                )
        self._clear_escrow()
        self._busy = False
        self._faults = frozenset()

    def replay_drained(self, answers: list[Data], now: float) -> None:
        # Bills stacked while no controller listened are money in the cash box; a bill
        # left in escrow was handed back by the RESET that followed.
        for data in answers:
            try:
                items = decode_poll(data.payload).items
            except DecodeError as exc:
                self.emit(ProtocolViolation(self.address, self.device, f"drained POLL: {exc}"))
                continue
            for item in items:
                if isinstance(item, BillRouted) and item.routing in _CREDIT_ROUTES:
                    value = self._values.get(item.bill_type)
                    if value is not None:
                        self.emit(BillStacked(self.address, item.bill_type, value))

    def handle_poll(self, reply: Ack | Data, now: float) -> None:
        items = decode_poll(reply.payload).items if isinstance(reply, Data) else ()
        self._busy = any(_is_status(i, StatusCode.VALIDATOR_BUSY) for i in items)
        faults: set[str] = set()
        for item in items:
            if isinstance(item, ValidatorStatus | RecyclerStatus):
                fault = _fault_code(item)
                if fault:
                    faults.add(fault)
                    continue
            if not self._resend:
                self._on_item(item, now)
        self._update_faults(frozenset(faults))
        if self._busy:
            self.defer(now, self.timing.busy_interval)
        self._send_decision()
        if self.is_ready and now >= self._next_stacker_at:
            self._next_stacker_at = now + self.stacker_interval
            self.queue(Stacker(), self._on_stacker_polled)

    # --- initialisation steps -----------------------------------------------------

    def _on_setup(self, reply: Ack | Data, now: float) -> None:
        try:
            if not isinstance(reply, Data):
                raise DecodeError("SETUP answered with a bare ACK")
            setup = decode_setup(reply.payload)
        except DecodeError as exc:
            self._refuse(BAD_SETUP, str(exc), now)
            return
        if setup.currency != self.currency:
            reported = setup.currency.code if setup.currency else f"{setup.currency_code:#06x}"
            self._refuse(
                CURRENCY_MISMATCH, f"validator has {reported}, machine {self.currency}", now
            )
            return
        try:
            values = setup.bill_values(self.currency)
        except MoneyError as exc:
            self._refuse(BAD_SETUP, str(exc), now)
            return
        self._blocked = None
        self._setup, self._values = setup, values
        if setup.level >= 2:
            self.queue(IdentificationL2(), self._on_identification_l2)
        else:
            self.queue(IdentificationL1(), self._on_identification)

    def _refuse(self, code: str, detail: str, now: float) -> None:
        """A SETUP we cannot work with: say so once, ask again now and then, never enable."""
        if self._blocked != code:
            self._fault(code, detail)
        self._blocked = code
        self.queue(Setup(), self._on_setup)
        self.defer(now, self.timing.probe_interval)

    def _on_identification(self, reply: Ack | Data, now: float) -> None:
        self._identification = self._read_identification(reply, with_features=False)
        self.queue(Stacker(), self._on_init_stacker)

    def _on_identification_l2(self, reply: Ack | Data, now: float) -> None:
        ident = self._read_identification(reply, with_features=True)
        self._identification = ident
        features = (ident.features or 0) & WANTED_FEATURES if ident else 0
        self.queue(FeatureEnable(features), self._on_features)

    def _on_features(self, reply: Ack | Data, now: float) -> None:
        self.queue(Stacker(), self._on_init_stacker)

    def _read_identification(
        self, reply: Ack | Data, with_features: bool
    ) -> BillIdentification | None:
        # Identification is nice to have; a validator that garbles it still takes bills.
        if not isinstance(reply, Data):
            return None
        try:
            return decode_identification(reply.payload, with_features)
        except DecodeError as exc:
            self.emit(ProtocolViolation(self.address, self.device, f"identification: {exc}"))
            return None

    def _on_init_stacker(self, reply: Ack | Data, now: float) -> None:
        self._read_stacker(reply, now, announce=False)
        self.queue(self._bill_type_command(), self._on_init_enables)

    def _on_init_enables(self, reply: Ack | Data, now: float) -> None:
        assert self._setup is not None
        self._next_stacker_at = now + self.stacker_interval
        self.ready(now, BillValidatorInfo(self._setup, self._identification, self._stacker))
        if self.stacker_full:
            self._fault(STACKER_FULL, "stacker full at start-up")

    # --- steady state ---------------------------------------------------------------

    def _on_item(self, item: PollItem, now: float) -> None:
        if isinstance(item, BillRouted):
            self._on_bill(item.bill_type, item.routing, now)
        elif isinstance(item, DisabledBillAttempts):
            self.emit(BillRejected(self.address, None, "validator_disabled", item.count))
        elif _is_status(item, StatusCode.BILL_REMOVED):
            bill = self._escrowed
            value = self._values.get(bill) if bill is not None else None
            self._clear_escrow()
            self.emit(EscrowedBillRemoved(self.address, bill, value))
        elif _is_status(item, StatusCode.BILL_REJECTED):
            self.emit(BillRejected(self.address, None, "unknown_bill"))
        elif _is_status(item, StatusCode.INVALID_ESCROW_REQUEST):
            # The validator holds no bill, whatever we thought: the escrow is over.
            self._clear_escrow()
            self._fault(INVALID_ESCROW_REQUEST, "ESCROW sent with no bill in escrow")

    def _on_bill(self, bill: int, routing: BillRouting, now: float) -> None:
        value = self._values.get(bill)
        if routing is BillRouting.ESCROW:
            if self._escrowed == bill:
                return  # still the same bill; the validator has one escrow position
            self._clear_escrow()
            self._escrowed = bill
            if value is None:
                self.emit(BillRejected(self.address, bill, "no_value"))
                self._decide(stack=False)
            else:
                self.emit(BillEscrowed(self.address, bill, value))
        elif routing in _CREDIT_ROUTES:
            self._clear_escrow()
            if value is None:
                self._fault(UNVALUED_BILL_STACKED, f"bill type {bill} has no value in SETUP")
            else:
                self.emit(BillStacked(self.address, bill, value))
            self._next_stacker_at = now  # read the count (and "full") right away
        elif routing is BillRouting.RETURNED:
            asked = self._escrowed is not None and self._decision is False
            held = self._escrowed is not None
            self._clear_escrow()
            reason = "returned" if asked or not held else "timed_out"
            self.emit(BillReturned(self.address, bill, value, reason))
        elif routing is BillRouting.DISABLED_REJECTED:
            self.emit(BillRejected(self.address, bill, "disabled"))
        elif routing in _RECYCLER_ROUTES:
            self.emit(RecyclerBillMoved(self.address, bill, routing, value))

    def _on_stacker_asked(self, reply: Ack | Data, now: float) -> None:
        self._read_stacker(reply, now, announce=True)

    def _on_stacker_polled(self, reply: Ack | Data, now: float) -> None:
        self._read_stacker(reply, now, announce=False)

    def _read_stacker(self, reply: Ack | Data, now: float, announce: bool) -> None:
        if not isinstance(reply, Data):
            return
        try:
            stacker = decode_stacker(reply.payload)
        except DecodeError as exc:
            self.emit(ProtocolViolation(self.address, self.device, f"STACKER: {exc}"))
            return
        old, self._stacker = self._stacker, stacker
        if self.state is not DeviceState.READY:
            return  # the READY info carries it
        if announce or stacker != old:
            self.emit(StackerRead(self.address, stacker.full, stacker.count))
        if stacker.full and not (old and old.full):
            self._fault(STACKER_FULL, f"stacker full with {stacker.count} bills")

    # --- helpers --------------------------------------------------------------------

    def _bill_type_command(self) -> BillType:
        if not self._accepting or self._blocked or self._setup is None:
            return BillType()
        known = frozenset(self._values)
        types = known if self._want_types is None else self._want_types & known
        escrow = types if self._want_escrow and self._setup.escrow_capable else frozenset()
        return BillType(types, escrow)

    def _push_enables(self) -> None:
        if self.is_ready:
            self.queue(self._bill_type_command())

    def _decide(self, stack: bool) -> None:
        if self._escrowed is None:
            raise NoBillInEscrowError("no bill in escrow")
        if self._decision is not None:
            verb = "stack" if self._decision else "return"
            raise NoBillInEscrowError(f"the escrowed bill is already being {verb}ed")
        self._decision = stack
        self._send_decision()

    def _send_decision(self) -> None:
        # MDB: no ESCROW command while the validator reports busy.
        if self._decision is None or self._decision_sent or self._busy or not self.is_ready:
            return
        self._decision_sent = True
        self.queue(Escrow(stack=self._decision))

    def _clear_escrow(self) -> None:
        self._escrowed = None
        self._decision = None
        self._decision_sent = False

    def _update_faults(self, faults: frozenset[str]) -> None:
        for code in sorted(faults - self._faults):
            self._fault(code, "reported by the validator")
        self._faults = faults

    def _fault(self, code: str, detail: str) -> None:
        self.emit(DeviceFault(self.address, self.device, code, detail))


def _is_status(item: PollItem, code: StatusCode) -> bool:
    return isinstance(item, ValidatorStatus) and item.code == code


def _fault_code(item: ValidatorStatus | RecyclerStatus) -> str | None:
    """Stable fault code of a status item; None for statuses handled as events."""
    if isinstance(item, RecyclerStatus):
        return f"recycler_status_{item.code:02x}"
    if item.code in FAULT_CODES:
        return FAULT_CODES[item.code]
    if item.code in _INFORMATIONAL or item.code in (
        StatusCode.BILL_REMOVED,
        StatusCode.BILL_REJECTED,
        StatusCode.INVALID_ESCROW_REQUEST,
    ):
        return None
    return f"unknown_status_{item.code:02x}"
