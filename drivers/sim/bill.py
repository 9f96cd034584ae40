"""A simulated MDB bill validator (address 0x30), level 1 or 2, firmware-accurate enough
for the VMC to be tested against it.

Defaults fit Vietnam: level 2, VND (MDB currency code 0x1704), scale factor 1000,
0 decimal places, bill types 0..7 = 1, 2, 5, 10, 20, 50, 100, 200 units (1,000 to
200,000 VND), escrow capable, stacker capacity 500.

Firmware behaviour:

* after power-up or RESET the first POLL answers ``06 09`` (was reset, disabled)
  and acceptance is off until BILL TYPE enables it;
* a bill whose escrow bit is set stops in escrow (POLL ``9t``); ESCROW stack makes
  the validator busy (``03``) for ``stack_time`` and then reports ``8t``; ESCROW
  return reports ``At`` after ``return_time``; ESCROW with nothing in escrow
  reports ``0A``. A bill without its escrow bit goes straight to the stacker;
* an escrowed bill left alone for ``escrow_timeout`` seconds is returned by the
  validator itself (``At``);
* a full stacker (count reaches capacity, or the ``stacker_full`` action) stops
  acceptance: offered bills count as attempts while disabled (``41``); STACKER
  answers with bit 15 set;
* jam (``05``) and cash box out (``08``) are reported on every POLL while they last
  and refuse new bills;
* POLL data the VMC did not ACK is sent again, byte for byte, on the next POLL.

Control actions (``control(action, args, now)``; args are JSON values because
other processes send them through the control socket):

=================== ============================ ===================================
action              args                         effect
=================== ============================ ===================================
insert_bill         ``bill_type`` or ``value``   a customer offers a bill (value in
                    (minor units)                minor units); result says if taken
insert_unknown      -                            an unrecognised bill: ``0B``
take_escrowed       -                            customer pulls the escrowed bill:
                                                 ``07``
jam / clear_jam     -                            bill path jammed / cleared
stacker_full /      -                            stacker reports full / was emptied
empty_stacker
remove_cash_box /   -                            cash box out of position / back
replace_cash_box
unplug / plug       -                            off the bus (and unpowered: MDB
                                                 carries power), back with a reset
power_cycle         -                            power loss and restart
set_escrow_timeout  ``seconds``                  how long escrow holds a bill
=================== ============================ ===================================
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from drivers.sim.base import PollData, Silence, SimAnswer, SimPeripheral
from protocols.mdb.bill.codec import BILL_VALIDATOR
from protocols.mdb.bill.messages import (
    ADDRESS,
    BILL_TYPES,
    BillIdentification,
    BillRouting,
    BillSetup,
    BillType,
    Escrow,
    FeatureEnable,
    IdentificationL1,
    IdentificationL2,
    Poll,
    Reset,
    Security,
    Setup,
    Stacker,
    StackerAnswer,
    StatusCode,
)
from protocols.mdb.errors import DecodeError
from protocols.mdb.wire import Ack, Data
from protocols.money import MdbScaling, MoneyError, currency_from_mdb

VND_MDB_CODE = 0x1704
VND_BILL_CREDITS = (1, 2, 5, 10, 20, 50, 100, 200)
MAX_POLL_BYTES = 16

Action = Callable[[dict[str, Any], float], dict[str, object]]


def _item(routing: BillRouting, bill_type: int) -> int:
    return 0x80 | routing << 4 | bill_type


class SimBillValidator(SimPeripheral):
    """The validator's firmware: answers one command block at a time on a given clock."""

    addresses = (ADDRESS,)

    def __init__(
        self,
        *,
        level: int = 2,
        currency_code: int = VND_MDB_CODE,
        scale_factor: int = 1000,
        decimal_places: int = 0,
        bill_credits: tuple[int, ...] = VND_BILL_CREDITS,
        escrow_capable: bool = True,
        stacker_capacity: int = 500,
        stacker_count: int = 0,
        escrow_timeout: float = 30.0,
        stack_time: float = 1.0,
        return_time: float = 0.5,
        serial: str = "000000000001",
        features: int = 0,
    ) -> None:
        super().__init__()
        if level not in (1, 2):
            raise ValueError(f"level must be 1 or 2, got {level}")
        if len(bill_credits) > BILL_TYPES or any(not 0 <= c <= 0xFF for c in bill_credits):
            raise ValueError("bill_credits: at most 16 types, each 0..255 units")
        if not 0 <= stacker_count <= 0x7FFF:
            raise ValueError(f"stacker_count must be 0..32767, got {stacker_count}")
        self.setup = BillSetup(
            level=level,
            currency_code=currency_code,
            scale_factor=scale_factor,
            decimal_places=decimal_places,
            stacker_capacity=stacker_capacity,
            high_security=frozenset(),
            escrow_capable=escrow_capable,
            bill_credits=tuple(bill_credits),
        )
        self.setup.to_bytes()  # refuse a table that cannot be encoded, now
        self.identification = BillIdentification("VFS", serial, "SIM-BILL", 0x0100, features)
        self._scaling: MdbScaling | None = None
        currency = currency_from_mdb(currency_code)
        if currency is not None:
            # A simulated faulty device may carry a table that does not scale (factor 0).
            with contextlib.suppress(MoneyError):
                self._scaling = MdbScaling(scale_factor, decimal_places, currency)
        self.escrow_timeout = escrow_timeout
        self.stack_time = stack_time
        self.return_time = return_time
        # Physical state: survives power loss.
        self.stacker_count = stacker_count
        self.stacked_units = 0  # value now in the stacker
        self.stacked_total_units = 0  # ever stacked
        self.jammed = False
        self.cash_box_out = False
        self.stacker_marked_full = False
        self._actions: dict[str, Action] = {
            "insert_bill": self._insert_bill,
            "insert_unknown": self._insert_unknown,
            "take_escrowed": self._take_escrowed,
            "jam": lambda _a, _n: self._set("jammed", value=True),
            "clear_jam": lambda _a, _n: self._set("jammed", value=False),
            "stacker_full": lambda _a, _n: self._set("stacker_marked_full", value=True),
            "empty_stacker": self._empty_stacker,
            "remove_cash_box": lambda _a, _n: self._set("cash_box_out", value=True),
            "replace_cash_box": lambda _a, _n: self._set("cash_box_out", value=False),
            "unplug": self._unplug,
            "plug": self._plug,
            "power_cycle": self._power_cycle,
            "set_escrow_timeout": self._set_escrow_timeout,
        }
        self._power_up()

    def _restart(self) -> None:
        """RESET or power loss: a bill already moving finishes its way, unreported."""
        if self._transport is not None:
            stack, bill, _ = self._transport
            if stack:
                self._count_stacked(bill)
        self._power_up()

    def _count_stacked(self, bill: int) -> None:
        self.stacker_count += 1
        self.stacked_units += self.setup.bill_credits[bill]
        self.stacked_total_units += self.setup.bill_credits[bill]

    def _power_up(self) -> None:
        """Power-up state: no enables, no bill held (an escrowed one is given back), 06 09."""
        self.enabled: frozenset[int] = frozenset()
        self.escrow_enabled: frozenset[int] = frozenset()
        self.high_security: frozenset[int] = frozenset()
        self.features_enabled = 0
        self.escrow: int | None = None
        self._escrow_since = 0.0
        self._transport: tuple[bool, int, float] | None = None  # (stack?, bill type, done at)
        self._pending: list[int] = [StatusCode.VALIDATOR_WAS_RESET, StatusCode.VALIDATOR_DISABLED]
        self._poll_data = PollData()

    # --- the bus side ---------------------------------------------------------------

    def command_length(self, prefix: bytes) -> int | None:
        return BILL_VALIDATOR.command_length(prefix)

    def handle(self, block: bytes, now: float) -> SimAnswer:
        self._advance(now)
        self._poll_data.command_received()
        try:
            command = BILL_VALIDATOR.decode_command(block)
        except DecodeError:
            return Silence()  # real firmware ignores what it cannot parse
        if isinstance(command, Poll):
            return self._poll()
        if isinstance(command, Reset):
            self._restart()
            return Ack()
        if isinstance(command, Setup):
            return Data(self.setup.to_bytes())
        if isinstance(command, Security):
            self.high_security = command.high_security
            return Ack()
        if isinstance(command, BillType):
            self.enabled, self.escrow_enabled = command.enabled, command.escrow
            return Ack()
        if isinstance(command, Escrow):
            self._escrow_command(stack=command.stack, now=now)
            return Ack()
        if isinstance(command, Stacker):
            return Data(
                StackerAnswer(self.stacker_full, min(self.stacker_count, 0x7FFF)).to_bytes()
            )
        return self._expansion(command)

    def acked(self, ok: bool) -> None:
        self._poll_data.acked(ok)

    def _poll(self) -> SimAnswer:
        return self._poll_data.answer(self._poll_items)

    def _poll_items(self) -> bytes:
        items = self._pending[:MAX_POLL_BYTES]
        del self._pending[: len(items)]
        for status, active in (
            (StatusCode.VALIDATOR_BUSY, self._transport is not None),
            (StatusCode.VALIDATOR_JAMMED, self.jammed),
            (StatusCode.CASH_BOX_OUT_OF_POSITION, self.cash_box_out),
        ):
            if active and len(items) < MAX_POLL_BYTES:
                items.append(status)
        return bytes(items)

    def _escrow_command(self, stack: bool, now: float) -> None:
        if self.escrow is None or self._transport is not None:
            self._pending.append(StatusCode.INVALID_ESCROW_REQUEST)
            return
        delay = self.stack_time if stack else self.return_time
        self._transport = (stack, self.escrow, now + delay)
        self.escrow = None

    def _expansion(self, command: object) -> SimAnswer:
        if isinstance(command, IdentificationL1):
            ident = self.identification
            return Data(
                BillIdentification(
                    ident.manufacturer, ident.serial, ident.model, ident.software_version
                ).to_bytes()
            )
        if self.setup.level < 2:
            return Silence()  # a level 1 validator does not know the level 2 sub-commands
        if isinstance(command, IdentificationL2):
            return Data(self.identification.to_bytes())
        if isinstance(command, FeatureEnable):
            self.features_enabled = command.features & (self.identification.features or 0)
            return Ack()
        return Silence()  # not a recycler: no recycler, FTL or diagnostic commands

    def _advance(self, now: float) -> None:
        """Let simulated time finish transports and run out the escrow timer."""
        if self._transport is not None and now >= self._transport[2]:
            stack, bill, _ = self._transport
            self._transport = None
            if stack:
                self._count_stacked(bill)
                self._pending.append(_item(BillRouting.STACKED, bill))
            else:
                self._pending.append(_item(BillRouting.RETURNED, bill))
        if (
            self.escrow is not None
            and self._transport is None
            and now >= self._escrow_since + self.escrow_timeout
        ):
            self._transport = (False, self.escrow, now + self.return_time)
            self.escrow = None

    # --- the customer / operator side -------------------------------------------------

    @property
    def stacker_full(self) -> bool:
        return self.stacker_marked_full or self.stacker_count >= self.setup.stacker_capacity

    def control(self, action: str, args: dict[str, object], now: float) -> dict[str, object]:
        handler = self._actions.get(action)
        if handler is None:
            known = ", ".join(sorted(self._actions))
            raise ValueError(f"bill validator has no action {action!r} (known: {known})")
        self._advance(now)
        return handler(dict(args), now)

    def status(self) -> dict[str, object]:
        return {
            "level": self.setup.level,
            "plugged": self.plugged,
            "enabled": sorted(self.enabled),
            "escrow_enabled": sorted(self.escrow_enabled),
            "escrow": self.escrow,
            "busy": self._transport is not None,
            "stacker_count": self.stacker_count,
            "stacker_full": self.stacker_full,
            "stacked_value": self._minor(self.stacked_units),
            "stacked_total": self._minor(self.stacked_total_units),
            "jammed": self.jammed,
            "cash_box_out": self.cash_box_out,
            "escrow_timeout": self.escrow_timeout,
            "pending": bytes(self._pending).hex(),
        }

    def _minor(self, units: int) -> int:
        """Device units as minor units of the currency (units if they do not convert)."""
        if self._scaling is None:
            return units
        try:
            return self._scaling.to_money(units).minor
        except MoneyError:
            return units

    def _bill_type_arg(self, args: dict[str, Any]) -> int:
        if "bill_type" in args:
            bill = _int_arg(args, "bill_type")
            if not 0 <= bill < len(self.setup.bill_credits) or not self.setup.bill_credits[bill]:
                raise ValueError(f"this validator has no bill type {bill}")
            return bill
        if "value" in args:
            value = _int_arg(args, "value")
            for bill, credit in enumerate(self.setup.bill_credits):
                if credit and self._minor(credit) == value:
                    return bill
            raise ValueError(f"no bill type is worth {value} minor units")
        raise ValueError("insert_bill needs 'bill_type' or 'value' (minor units)")

    def _insert_bill(self, args: dict[str, Any], now: float) -> dict[str, object]:
        bill = self._bill_type_arg(args)
        refused = self._refusal()
        if refused:
            return {"accepted": False, "bill_type": bill, "reason": refused}
        if not self.enabled or self.stacker_full:
            self._pending.append(0x40 | 1)  # one attempt while disabled
            reason = "stacker_full" if self.stacker_full else "disabled"
            return {"accepted": False, "bill_type": bill, "reason": reason}
        if bill not in self.enabled:
            self._pending.append(_item(BillRouting.DISABLED_REJECTED, bill))
            return {"accepted": False, "bill_type": bill, "reason": "type_disabled"}
        to_escrow = self.setup.escrow_capable and bill in self.escrow_enabled
        if to_escrow:
            self.escrow, self._escrow_since = bill, now
            self._pending.append(_item(BillRouting.ESCROW, bill))
        else:
            self._transport = (True, bill, now + self.stack_time)
        return {"accepted": True, "bill_type": bill, "escrow": to_escrow}

    def _refusal(self) -> str | None:
        """Why the bill path cannot take a bill at all (it never reaches validation)."""
        if not self.plugged:
            return "unplugged"
        if self.jammed:
            return "jammed"
        if self.cash_box_out:
            return "cash_box_out"
        if self.escrow is not None or self._transport is not None:
            return "busy"
        return None

    def _insert_unknown(self, _args: dict[str, Any], _now: float) -> dict[str, object]:
        refused = self._refusal()
        if refused:
            return {"accepted": False, "reason": refused}
        self._pending.append(StatusCode.BILL_REJECTED)
        return {"accepted": False, "reason": "unknown_bill"}

    def _take_escrowed(self, _args: dict[str, Any], _now: float) -> dict[str, object]:
        if self.escrow is None:
            raise ValueError("no bill in escrow to take")
        bill, self.escrow = self.escrow, None
        self._pending.append(StatusCode.BILL_REMOVED)
        return {"bill_type": bill}

    def _set(self, name: str, *, value: bool) -> dict[str, object]:
        setattr(self, name, value)
        return {name: value}

    def _empty_stacker(self, _args: dict[str, Any], _now: float) -> dict[str, object]:
        emptied: dict[str, object] = {
            "bills": self.stacker_count,
            "value": self._minor(self.stacked_units),
        }
        self.stacker_count = self.stacked_units = 0
        self.stacker_marked_full = False
        return emptied

    def _unplug(self, _args: dict[str, Any], _now: float) -> dict[str, object]:
        self.plugged = False
        return {"plugged": False}

    def _plug(self, _args: dict[str, Any], _now: float) -> dict[str, object]:
        if not self.plugged:
            self.plugged = True
            self._restart()
        return {"plugged": True}

    def _power_cycle(self, _args: dict[str, Any], _now: float) -> dict[str, object]:
        returned = self.escrow
        self._restart()
        return {"returned_bill": returned}

    def _set_escrow_timeout(self, args: dict[str, Any], _now: float) -> dict[str, object]:
        seconds = args.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
            raise ValueError(f"set_escrow_timeout needs 'seconds' > 0, got {seconds!r}")
        self.escrow_timeout = float(seconds)
        return {"escrow_timeout": self.escrow_timeout}


def _int_arg(args: dict[str, Any], name: str) -> int:
    value = args[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name!r} must be an integer, got {value!r}")
    return value
