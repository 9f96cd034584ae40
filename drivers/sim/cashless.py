"""A simulated cashless reader (card / phone payment), MDB levels 1-3, at 0x10 or 0x60.

The firmware follows the reader state machine of the spec (reference mdb.md 5.3):
Inactive -> Disabled -> Enabled -> Session Idle -> Vend. After RESET it reports
JUST RESET; SETUP config is answered with READER CONFIG (or, with
``config_on_later_poll``, on the next POLL, as some readers do); REQUEST ID is
answered with PERIPHERAL ID on the next POLL. A command that is illegal in the
current state is acknowledged and reported as CMD OUT OF SEQUENCE on the next POLL.
Data the VMC did not ACK is sent again on the next POLL.

Money: the reader charges the card when it approves a vend and restores the funds
on VEND FAILURE (unless told to fail refunds); a vend approved but never settled
when the reader resets is voided. :meth:`SimCashlessReader.status` shows the
ledger in minor units.

Control actions (``control(action, args, now)``; args are JSON values because the
control socket may carry them from another process):

``present_card {"funds": <minor units> | "unknown"}``
    A customer presents a card; the reader must be enabled. Starts a session.
``set_policy {"policy": "approve" | "deny" | "timeout"}``
    How VEND REQUESTs are answered; ``timeout`` = never answered.
``cancel_session {}``
    The customer cancels: SESSION CANCEL REQUEST on the next POLL.
``fail_refunds {"on": true}``
    VEND FAILURE is answered with MALFUNCTION C0 (refund error) instead of a refund.
``unplug {}`` / ``plug {}``
    The reader goes silent / answers again.
``power_cycle {}``
    The reader resets on its own (a session in progress is lost).
``send_out_of_sequence {}``
    Report CMD OUT OF SEQUENCE on the next POLL.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.sim.base import Silence, SimAnswer, SimPeripheral
from protocols.mdb.cashless import answers as a
from protocols.mdb.cashless import commands as c
from protocols.mdb.cashless.states import STATUS_CODES, CashlessState
from protocols.mdb.errors import DecodeError
from protocols.mdb.message import Command
from protocols.mdb.wire import MAX_DATA, Ack, Data
from protocols.money import MdbScaling, Money, MoneyError, currency_from_mdb

S = CashlessState
POLICIES = ("approve", "deny", "timeout")
REFUND_ERROR = 0xC0


@dataclass(slots=True)
class _Vend:
    price: int
    item: int
    negative: bool
    approved: bool = False


class SimCashlessReader(SimPeripheral):
    """Reader firmware; amounts inside are device units, ``status()`` shows minor units."""

    def __init__(  # noqa: PLR0917 - mirrors READER CONFIG field by field
        self,
        address: int = 0x10,
        level: int = 3,
        currency_code: int = 0x1704,
        scale_factor: int = 1,
        decimal_places: int = 0,
        max_response_time: int = 5,
        options: int = a.OPTION_REFUND | a.OPTION_MULTIVEND | a.OPTION_CASH_SALE,
        supports_expanded: bool = True,
        *,
        config_on_later_poll: bool = False,
        sends_end_session: bool = True,
        session_timeout: float = 60.0,
        offers_negative_vend: bool = True,
        offers_always_idle: bool = False,
    ) -> None:
        super().__init__()
        if address not in c.ADDRESSES:
            raise ValueError(f"{address:#04x} is not a cashless reader address (0x10 or 0x60)")
        if level not in (1, 2, 3):
            raise ValueError(f"reader feature level must be 1, 2 or 3, got {level}")
        self.address = address
        self.addresses = (address,)
        self.reader_config = a.ReaderConfig(
            level, currency_code, scale_factor, decimal_places, max_response_time, options
        )
        offered = 0
        if level == 3:
            offered |= a.FEATURE_32BIT if supports_expanded else 0
            offered |= a.FEATURE_NEGATIVE_VEND if offers_negative_vend else 0
            offered |= a.FEATURE_ALWAYS_IDLE if offers_always_idle else 0
        self.identity = a.PeripheralId(
            "VFS", f"SIM{address:09X}", "CASHLESS-SIM", 0x0100, offered if level == 3 else None
        )
        self.config_on_later_poll = config_on_later_poll
        self.sends_end_session = sends_end_session
        self.session_timeout = session_timeout
        cur = currency_from_mdb(currency_code)
        self._scaling = MdbScaling(scale_factor, decimal_places, cur) if cur else None
        self.policy = "approve"
        self.fail_refunds = False
        # Ledger in device units.
        self.charged = 0
        self.refunded = 0
        self.credited = 0
        self.cash_sales: list[tuple[int, int]] = []
        self.last_vend: dict[str, object] | None = None
        self._outbox: list[a.Item] = []
        self._inflight: list[a.Item] | None = None
        self._inflight_from_outbox = False
        self._power_up()

    def _power_up(self) -> None:
        """What RESET and power-up have in common: back to Inactive, features off."""
        vend = getattr(self, "_vend", None)
        if vend is not None and vend.approved and not vend.negative:
            self.refunded += vend.price  # the unsettled authorisation is voided
            self.last_vend = {"item": vend.item, "price": vend.price, "outcome": "voided"}
        self.state = S.INACTIVE
        self.features = 0
        self.max_price = 0xFFFF
        self.min_price = 0
        self._funds: int | None = None
        self._vend: _Vend | None = None
        self._session_started = 0.0
        self._cancel_requested = False
        self._disable_after_session = False
        self._outbox = [a.JustReset()]
        self._inflight = None

    @property
    def expanded(self) -> bool:
        return bool(self.features & a.FEATURE_32BIT)

    @property
    def level(self) -> int:
        return self.reader_config.level

    # --- SimPeripheral ------------------------------------------------------------

    def command_length(self, prefix: bytes) -> int | None:
        return c.command_length(prefix, self.expanded)

    def handle(self, block: bytes, now: float) -> SimAnswer:
        if not self.plugged or not block or block[0] & 0xF8 != self.address:
            return Silence()
        if self._inflight is not None:
            self.acked(ok=True)  # the link never told us: assume the ACK arrived
        try:
            command = c.read_command(block)
        except DecodeError:
            return Silence()  # firmware ignores what it cannot parse
        self._check_timeout(now)
        if isinstance(command, c.Poll):
            return self._answer(self._take_outbox(), from_outbox=True)
        return self._answer(self._execute(command, now), from_outbox=False)

    def acked(self, ok: bool) -> None:
        items, self._inflight = self._inflight, None
        if items is None:
            return
        if ok and self._inflight_from_outbox:
            del self._outbox[: len(items)]
        elif not ok and not self._inflight_from_outbox:
            self._outbox[0:0] = items  # a direct answer that was lost goes out on the next POLL

    def _answer(self, items: list[a.Item], from_outbox: bool) -> SimAnswer:
        if not items:
            return Ack()
        self._inflight = items
        self._inflight_from_outbox = from_outbox
        return Data(a.PollAnswer(tuple(items)).to_bytes())

    def _take_outbox(self) -> list[a.Item]:
        taken: list[a.Item] = []
        size = 0
        for item in self._outbox:
            size += len(item.to_bytes())
            if size > MAX_DATA:
                break
            taken.append(item)
        return taken

    def _check_timeout(self, now: float) -> None:
        if (
            self.state is S.SESSION_IDLE
            and not self._cancel_requested
            and now - self._session_started >= self.session_timeout
        ):
            self._request_cancel()

    def _request_cancel(self) -> None:
        self._cancel_requested = True
        self._outbox.append(a.SessionCancelRequest())

    def _out_of_sequence(self) -> list[a.Item]:
        status = STATUS_CODES.get(self.state) if self.level >= 2 else None
        self._outbox.append(a.CmdOutOfSequence(status))
        return []

    # --- firmware -----------------------------------------------------------------

    def _execute(self, command: Command, now: float) -> list[a.Item]:
        st = self.state
        match command:
            case c.Reset():
                self._power_up()
            case c.SetupConfig() if st in (S.INACTIVE, S.DISABLED):
                self.state = S.DISABLED
                if self.config_on_later_poll:
                    self._outbox.append(self.reader_config)
                    return []
                return [self.reader_config]
            case c.SetupPrices() if st in (S.DISABLED, S.ENABLED) and command.wide == self.expanded:
                self.max_price, self.min_price = command.max_price, command.min_price
            case c.ExpansionRequestId() if st in (S.DISABLED, S.ENABLED):
                self._outbox.append(self.identity)
            case c.OptionalFeatureEnabled() if st in (S.DISABLED, S.ENABLED) and self.level == 3:
                self.features = command.features & (self.identity.features or 0)
            case c.ReaderEnable() if st in (S.DISABLED, S.ENABLED):
                self.state = S.ENABLED
            case c.ReaderDisable() if st in (S.DISABLED, S.ENABLED):
                self.state = S.DISABLED
            case c.ReaderDisable() if st in (S.SESSION_IDLE, S.VEND):
                self._disable_after_session = True
            case c.ReaderCancel() if st is S.ENABLED:
                return [a.Cancelled()]
            case c.VendRequest() | c.NegativeVendRequest() if command.wide == self.expanded:
                return self._vend_request(command, now)
            case c.VendCancel() if st is S.VEND and self._vend and not self._vend.approved:
                self.state, self._vend = S.SESSION_IDLE, None
                return [a.VendDenied()]
            case c.VendCancel() if st is S.VEND:
                pass  # too late: approved; the VMC must report success or failure
            case c.VendSuccess() if st in (S.VEND, S.NEGATIVE_VEND) and self._approved():
                self._settle(success=True, item=command.item)
            case c.VendFailure() if st in (S.VEND, S.NEGATIVE_VEND) and self._approved():
                self._settle(success=False, item=None)
            case c.SessionComplete() if st is S.SESSION_IDLE:
                self._end_session()
            case c.CashSale() if st in (S.DISABLED, S.ENABLED, S.SESSION_IDLE):
                if command.wide == self.expanded:
                    self.cash_sales.append((command.price, command.item))
            case c.RevalueRequest() if st is S.SESSION_IDLE and self.level >= 2:
                return self._revalue(command)
            case c.RevalueLimitRequest() if st is S.SESSION_IDLE and self.level >= 2:
                return [a.RevalueLimitAmount(a.UNKNOWN_16, self.expanded)]
            case c.DataEntryResponse() | c.WriteTimeDate() | c.ExpansionRaw():
                pass
            case _:
                return self._out_of_sequence()
        return []

    def _approved(self) -> bool:
        return self._vend is not None and self._vend.approved

    def _vend_request(
        self, command: c.VendRequest | c.NegativeVendRequest, now: float
    ) -> list[a.Item]:
        negative = isinstance(command, c.NegativeVendRequest)
        always_idle = bool(self.features & a.FEATURE_ALWAYS_IDLE)
        if self.state is S.ENABLED and always_idle and not negative:
            self._start_session(None, now, announce=False)
        if self.state is not S.SESSION_IDLE or (
            negative and not self.features & a.FEATURE_NEGATIVE_VEND
        ):
            return self._out_of_sequence()
        self.state = S.NEGATIVE_VEND if negative else S.VEND
        self._vend = _Vend(command.price, command.item, negative)
        if self.policy == "timeout":
            return []
        short = not negative and self._funds is not None and command.price > self._funds
        if self.policy == "deny" or short:
            self.state, self._vend = S.SESSION_IDLE, None
            self._outbox.append(a.VendDenied())
            return []
        self._vend.approved = True
        if not negative:
            self.charged += command.price
            if self._funds is not None:
                self._funds -= command.price
        self._outbox.append(a.VendApproved(command.price, self.expanded))
        return []

    def _settle(self, success: bool, item: int | None) -> None:
        vend = self._vend
        assert vend is not None
        outcome = "success" if success else "failure"
        if vend.negative and success:
            self.credited += vend.price
            self._funds = None if self._funds is None else self._funds + vend.price
        elif not vend.negative and not success:
            if self.fail_refunds:
                self._outbox.append(a.Malfunction(REFUND_ERROR))
                outcome = "refund_failed"
            else:
                self.refunded += vend.price
                self._funds = None if self._funds is None else self._funds + vend.price
                outcome = "refunded"
        self.last_vend = {
            "item": vend.item if item is None else item,
            "price": vend.price,
            "negative": vend.negative,
            "outcome": outcome,
        }
        self.state, self._vend = S.SESSION_IDLE, None

    def _revalue(self, command: c.RevalueRequest) -> list[a.Item]:
        if command.wide != self.expanded or self.policy != "approve":
            return [a.RevalueDenied()]
        self.credited += command.amount
        self._funds = None if self._funds is None else self._funds + command.amount
        return [a.RevalueApproved()]

    def _start_session(self, funds: int | None, now: float, announce: bool) -> None:
        self.state = S.SESSION_IDLE
        self._funds = funds
        self._session_started = now
        self._cancel_requested = False
        if not announce:
            return
        extra: dict[str, int] = {}
        if self.level >= 3:
            extra = {"media_id": 0x12345678, "payment_type": 0x00, "payment_data": 0x0000}
        self._outbox.append(a.BeginSession(funds, wide=self.expanded, **extra))

    def _end_session(self) -> None:
        self.state = S.DISABLED if self._disable_after_session else S.ENABLED
        self._disable_after_session = False
        self._funds = None
        if self.sends_end_session:
            self._outbox.append(a.EndSession())

    # --- control and status -------------------------------------------------------

    def _units(self, minor: int) -> int:
        if self._scaling is None:
            return minor
        try:
            return self._scaling.to_units(Money(minor, self._scaling.currency.code))
        except MoneyError as exc:
            raise ValueError(str(exc)) from None

    def _minor(self, units: int | None) -> int | None:
        if units is None or self._scaling is None:
            return units
        return self._scaling.to_money(units).minor

    def control(self, action: str, args: dict[str, object], now: float) -> dict[str, object]:
        if action == "present_card":
            if self.state is not S.ENABLED:
                raise ValueError(f"the reader is {self.state.value}, not enabled")
            funds = args.get("funds", "unknown")
            if funds == "unknown":
                units = None
            elif isinstance(funds, int) and not isinstance(funds, bool) and funds >= 0:
                units = self._units(funds)
            else:
                raise ValueError("funds must be minor units (a non-negative integer) or 'unknown'")
            limit = a.UNKNOWN_32 if self.expanded else a.UNKNOWN_16
            if units is not None and units >= limit:
                raise ValueError(f"funds of {units} units do not fit the reader's money format")
            self._start_session(units, now, announce=True)
        elif action == "set_policy":
            policy = args.get("policy")
            if policy not in POLICIES:
                raise ValueError(f"policy must be one of {', '.join(POLICIES)}")
            self.policy = str(policy)
        elif action == "cancel_session":
            if self.state not in (S.SESSION_IDLE, S.VEND, S.NEGATIVE_VEND):
                raise ValueError("no session to cancel")
            self._request_cancel()
        elif action == "fail_refunds":
            self.fail_refunds = bool(args.get("on", True))
        elif action in ("unplug", "plug"):
            self.plugged = action == "plug"
        elif action == "power_cycle":
            self._power_up()
        elif action == "send_out_of_sequence":
            self._out_of_sequence()
        else:
            raise ValueError(f"cashless reader has no action {action!r}")
        return self.status()

    def _last_vend_minor(self) -> dict[str, object] | None:
        if self.last_vend is None:
            return None
        price = self.last_vend["price"]
        assert isinstance(price, int)
        return {**self.last_vend, "price": self._minor(price)}

    def status(self) -> dict[str, object]:
        return {
            "address": self.address,
            "state": self.state.value,
            "plugged": self.plugged,
            "session_funds": self._minor(self._funds),
            "charged": self._minor(self.charged),
            "refunded": self._minor(self.refunded),
            "credited": self._minor(self.credited),
            "cash_sales": len(self.cash_sales),
            "last_vend": self._last_vend_minor(),
            "policy": self.policy,
            "features": self.features,
            "expanded_currency": self.expanded,
            "pending": [item.name for item in self._outbox],
        }
