"""A simulated MDB coin changer (address 0x08), Level 2 or 3, firmware-accurate enough
for the VMC to be tested against it.

Defaults fit Vietnam: Level 3, VND (MDB currency code 0x1704), scale factor 100,
0 decimal places, coin types 0..4 = 2, 5, 10, 20, 50 units (200 to 5,000 VND), every
type routed to a tube of 60 coins, 20 coins in each tube, alternative payout,
extended diagnostics and controlled manual fill/payout offered.

Firmware behaviour:

* after power-up or RESET the first POLL answers ``0B`` (changer was reset) and no
  coin is accepted until COIN TYPE enables it;
* an accepted coin goes to its tube if it is routed there and the tube is not full,
  else to the cash box (POLL ``01rr tttt`` + tube count); a coin of a disabled type
  is returned (route "rejected"); a jammed changer takes no coin at all;
* DISPENSE and ALTERNATIVE PAYOUT eject one coin every ``coin_time`` seconds and
  report ``02`` (payout busy) on every POLL meanwhile; a coin is only paid if its
  tube still holds one when its turn comes, so a tube running dry pays less;
  ALTERNATIVE PAYOUT picks coins largest first within the tube counts; payout
  commands that arrive while busy are ignored (and counted in ``status()``);
* SEND ALTERNATIVE PAYOUT STATUS answers ACK while paying, then the coins paid by
  the last payout; PAYOUT VALUE POLL answers the value paid so far, ACK when idle;
* a Level 2 changer does not answer EXPANSION commands;
* POLL data the VMC did not ACK is sent again, byte for byte, on the next POLL.

Control actions (``control(action, args, now)``; args are JSON values because other
processes send them through the control socket):

==================== ============================= ===================================
action               args                          effect
==================== ============================= ===================================
insert_coin          ``coin_type`` or ``value``    a customer drops a coin (value in
                     (minor units)                 minor units); result says where
insert_slug          -                             a false coin: ``21``
press_return_lever   -                             escrow request: ``01``
jam / clear_jam      -                             coin jam ``0C`` (coins refused) /
                                                   clears coin and tube jams
tube_jam             -                             tube jam ``07`` (payouts pay nothing)
busy                 ``seconds``                   changer busy ``0A`` for a while
unplug / plug        -                             off the bus (and unpowered: MDB
                                                   carries power), back with a reset
power_cycle          -                             power loss and restart: enables
                                                   forgotten, a running payout stops
set_tubes            ``counts`` (list of ints)     set the tube counts
fill                 ``coin_type``, ``count``      operator fills a tube by hand
manual_dispense      ``coin_type``, ``count``      operator pays out with the tube
                                                   button (``1nnn tttt`` items)
==================== ============================= ===================================
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from drivers.sim.base import PollData, Silence, SimAnswer, SimPeripheral
from protocols.mdb.changer.codec import (
    ADDRESS,
    CHANGER,
    COIN_TYPES,
    FEATURE_ALTERNATIVE_PAYOUT,
    FEATURE_EXTENDED_DIAGNOSTIC,
    FEATURE_MANUAL_FILL_PAYOUT,
    AlternativePayout,
    ChangerIdentification,
    ChangerSetup,
    CoinType,
    DiagnosticStatusRequest,
    Dispense,
    Expansion,
    FeatureEnable,
    Identification,
    ManualFillReportRequest,
    ManualPayoutReportRequest,
    PayoutStatusRequest,
    PayoutValuePoll,
    Poll,
    Reset,
    Setup,
    TubeStatus,
)
from protocols.mdb.changer.poll import (
    ChangerStatus,
    CoinDeposited,
    CoinsDispensedManually,
    Route,
    SlugsDetected,
    StatusCode,
)
from protocols.mdb.errors import DecodeError
from protocols.mdb.wire import Ack, Data
from protocols.money import MdbScaling, MoneyError, currency_from_mdb

VND_MDB_CODE = 0x1704
VND_COIN_CREDITS = (2, 5, 10, 20, 50)
DEFAULT_FEATURES = (
    FEATURE_ALTERNATIVE_PAYOUT | FEATURE_EXTENDED_DIAGNOSTIC | FEATURE_MANUAL_FILL_PAYOUT
)
MAX_POLL_BYTES = 16

Action = Callable[[dict[str, Any], float], dict[str, object]]


@dataclass(slots=True)
class _Payout:
    """Coins to eject, one every ``coin_time`` from ``started``."""

    coins: deque[int]
    next_at: float
    paid: list[int] = field(default_factory=lambda: [0] * COIN_TYPES)


class SimChanger(SimPeripheral):
    """The changer's firmware: answers one command block at a time on a given clock."""

    addresses = (ADDRESS,)

    def __init__(
        self,
        *,
        level: int = 3,
        currency_code: int = VND_MDB_CODE,
        scale_factor: int = 100,
        decimal_places: int = 0,
        coin_credits: Sequence[int] = VND_COIN_CREDITS,
        routing: Iterable[int] | None = None,
        tube_counts: Sequence[int] | None = None,
        tube_capacity: int = 60,
        features: int = DEFAULT_FEATURES,
        coin_time: float = 0.05,
        serial: str = "000000000001",
    ) -> None:
        super().__init__()
        if level not in (2, 3):
            raise ValueError(f"level must be 2 or 3, got {level}")
        types = len(coin_credits)
        known = [n for n, c in enumerate(coin_credits) if c]
        self.setup = ChangerSetup(
            level,
            currency_code,
            scale_factor,
            decimal_places,
            frozenset(known if routing is None else routing),
            tuple(coin_credits),
        )
        counts = (
            list(tube_counts) if tube_counts is not None else [20 if c else 0 for c in coin_credits]
        )
        if len(counts) > COIN_TYPES or any(not 0 <= c <= 0xFF for c in counts):
            raise ValueError("tube_counts: at most 16 types, each 0..255 coins")
        if not 1 <= tube_capacity <= 0xFF:
            raise ValueError(f"tube_capacity must be 1..255, got {tube_capacity}")
        self.identification = ChangerIdentification("VFS", serial, "SIM-CHANGER", 0x0100, features)
        currency = currency_from_mdb(currency_code)
        self._scaling = MdbScaling(scale_factor, decimal_places, currency) if currency else None
        self._types = max(types, len(counts))  # how many types the short answers carry
        self.tube_capacity = tube_capacity
        self.coin_time = coin_time
        # Physical state: survives power loss.
        self.tubes = counts + [0] * (COIN_TYPES - len(counts))
        self.cash_box = [0] * COIN_TYPES
        self.paid_out = [0] * COIN_TYPES  # ever paid as change
        self.manually_paid = [0] * COIN_TYPES
        self.jammed = False
        self.tube_jammed = False
        self.commands_while_busy = 0
        self._manual_fill_report = [0] * COIN_TYPES
        self._manual_payout_report = [0] * COIN_TYPES
        self._restart()
        self._actions: dict[str, Action] = {
            "insert_coin": self._insert_coin,
            "insert_slug": self._insert_slug,
            "press_return_lever": self._press_return_lever,
            "jam": self._jam,
            "clear_jam": self._clear_jam,
            "tube_jam": self._tube_jam,
            "busy": self._busy_for,
            "unplug": self._unplug,
            "plug": self._plug,
            "power_cycle": self._power_cycle,
            "set_tubes": self._set_tubes,
            "fill": self._fill,
            "manual_dispense": self._manual_dispense,
        }

    def _restart(self) -> None:
        """Power-up or RESET: configuration and unsent data are gone."""
        self.enabled: frozenset[int] = frozenset()
        self.manual_enabled: frozenset[int] = frozenset()
        self.features_enabled = 0
        self._payout: _Payout | None = None
        self._last_paid = [0] * COIN_TYPES
        self._busy_until = 0.0
        self._pending: deque[bytes] = deque(
            [ChangerStatus(StatusCode.CHANGER_WAS_RESET).to_bytes()]
        )
        self._poll_data = PollData()

    # --- the bus side ---------------------------------------------------------------

    def command_length(self, prefix: bytes) -> int | None:
        return CHANGER.command_length(prefix)

    def handle(self, block: bytes, now: float) -> SimAnswer:
        if not self.plugged:
            return Silence()
        self._advance(now)
        self._poll_data.command_received()
        try:
            command = CHANGER.decode_command(block)
        except DecodeError:
            return Silence()  # real firmware ignores what it cannot parse
        if isinstance(command, Poll):
            return self._poll(now)
        if isinstance(command, Reset):
            self._restart()
            return Ack()
        if isinstance(command, Setup):
            return Data(self._short(self.setup.to_bytes(), 7))
        if isinstance(command, TubeStatus):
            return Data(self._short(self._tube_status(), 2))
        if isinstance(command, CoinType):
            self.enabled = command.enabled & self.setup.coin_types
            self.manual_enabled = command.manual_dispense & self.setup.coin_types
            return Ack()
        if isinstance(command, Dispense):
            if self._busy(now):
                self.commands_while_busy += 1
            else:
                self._start_payout([command.coin_type] * command.count, now)
            return Ack()
        if isinstance(command, Expansion) and self.setup.level >= 3:
            return self._expansion(command, now)
        return Silence()

    def acked(self, ok: bool) -> None:
        self._poll_data.acked(ok)

    def _short(self, data: bytes, head: int) -> bytes:
        """Like real changers, send only the coin types this one has."""
        return data[: head + self._types]

    def _tube_status(self) -> bytes:
        full = sum(1 << n for n in range(COIN_TYPES) if self.tubes[n] >= self.tube_capacity)
        return full.to_bytes(2, "big") + bytes(min(c, 0xFF) for c in self.tubes)

    def _busy(self, now: float) -> bool:
        return self._payout is not None or now < self._busy_until

    def _poll(self, now: float) -> SimAnswer:
        def items() -> bytes:
            out = bytearray()
            if self._payout is not None:
                out += ChangerStatus(StatusCode.PAYOUT_BUSY).to_bytes()
            elif now < self._busy_until:
                out += ChangerStatus(StatusCode.CHANGER_BUSY).to_bytes()
            while self._pending and len(out) + len(self._pending[0]) <= MAX_POLL_BYTES:
                out += self._pending.popleft()
            return bytes(out)

        return self._poll_data.answer(items)

    def _expansion(self, command: Expansion, now: float) -> SimAnswer:
        features = self.identification.features
        if isinstance(command, Identification):
            return Data(self.identification.to_bytes())
        if isinstance(command, FeatureEnable):
            self.features_enabled = command.features & features
            return Ack()
        if isinstance(command, AlternativePayout):
            if not self.features_enabled & FEATURE_ALTERNATIVE_PAYOUT:
                return Ack()  # not enabled: ignored
            if self._busy(now):
                self.commands_while_busy += 1
            else:
                self._start_payout(self._pick(command.units), now)
            return Ack()
        if isinstance(command, PayoutStatusRequest):
            if self._payout is not None:
                return Ack()  # still paying
            return Data(bytes(self._last_paid[: self._types]))
        if isinstance(command, PayoutValuePoll):
            if self._payout is None:
                return Ack()
            return Data(bytes((min(self._units(self._payout.paid), 0xFF),)))
        if isinstance(command, DiagnosticStatusRequest):
            if not features & FEATURE_EXTENDED_DIAGNOSTIC:
                return Silence()
            return Data(self._diagnostics())
        if isinstance(command, ManualFillReportRequest | ManualPayoutReportRequest):
            if not features & FEATURE_MANUAL_FILL_PAYOUT:
                return Silence()
            fill = isinstance(command, ManualFillReportRequest)
            report = self._manual_fill_report if fill else self._manual_payout_report
            data = bytes(min(c, 0xFF) for c in report[: self._types])
            report[:] = [0] * COIN_TYPES
            return Data(data)
        return Silence()

    def _diagnostics(self) -> bytes:
        if self.jammed:
            return bytes((0x11, 0x00))  # error in the discriminator / acceptor path [mem]
        if self.tube_jammed:
            return bytes((0x14, 0x00))  # error in the dispenser [mem]
        return bytes((0x03, 0x00) if self.enabled else (0x06, 0x00))  # OK / inhibited by VMC

    # --- payouts --------------------------------------------------------------------

    def _pick(self, units: int) -> list[int]:
        """Alternative payout: largest coins first, within what the tubes hold."""
        coins: list[int] = []
        for n in sorted(self.setup.routing, key=lambda t: -self.setup.coin_credits[t]):
            credit = self.setup.coin_credits[n]
            if not credit or credit == 0xFF:
                continue
            take = min(self.tubes[n], units // credit)
            coins += [n] * take
            units -= take * credit
        return coins

    def _start_payout(self, coins: list[int], now: float) -> None:
        self._last_paid = [0] * COIN_TYPES
        self._payout = _Payout(deque(coins), now + self.coin_time)
        if not coins:
            self._payout = None

    def _advance(self, now: float) -> None:
        """Let simulated time eject coins."""
        payout = self._payout
        while payout is not None and payout.coins and now >= payout.next_at:
            coin = payout.coins.popleft()
            payout.next_at += self.coin_time
            if self.tubes[coin] > 0 and not self.tube_jammed:
                self.tubes[coin] -= 1
                payout.paid[coin] += 1
                self.paid_out[coin] += 1
        if payout is not None and not payout.coins:
            self._last_paid = payout.paid
            self._payout = None

    def _units(self, coins: Sequence[int]) -> int:
        return sum(c * self.setup.coin_credits[n] for n, c in enumerate(coins) if n < COIN_TYPES)

    def _minor(self, units: int) -> int | None:
        if self._scaling is None:
            return None
        try:
            return self._scaling.to_money(units).minor
        except MoneyError:
            return None

    # --- the customer / operator side -------------------------------------------------

    def control(self, action: str, args: dict[str, object], now: float) -> dict[str, object]:
        handler = self._actions.get(action)
        if handler is None:
            known = ", ".join(sorted(self._actions))
            raise ValueError(f"changer has no action {action!r} (known: {known})")
        self._advance(now)
        return handler(dict(args), now)

    def status(self) -> dict[str, object]:
        paid_units = self._units(self.paid_out)
        cash_units = self._units(self.cash_box)
        return {
            "level": self.setup.level,
            "plugged": self.plugged,
            "enabled": sorted(self.enabled),
            "manual_enabled": sorted(self.manual_enabled),
            "features_enabled": self.features_enabled,
            "tubes": self.tubes[: self._types],
            "tube_value": self._minor(self._units(self.tubes)),
            "cash_box": self.cash_box[: self._types],
            "cash_box_value": self._minor(cash_units),
            "busy": self._payout is not None,
            "paid_out": self.paid_out[: self._types],
            "paid_out_value": self._minor(paid_units),
            "manually_paid": self.manually_paid[: self._types],
            "jammed": self.jammed,
            "tube_jammed": self.tube_jammed,
            "commands_while_busy": self.commands_while_busy,
            "pending": b"".join(self._pending).hex(),
        }

    def _coin_type_arg(self, args: dict[str, Any], action: str) -> int:
        if "coin_type" in args:
            coin = _int_arg(args, "coin_type")
            if not 0 <= coin < COIN_TYPES or not self.setup.coin_credits[coin]:
                raise ValueError(f"this changer has no coin type {coin}")
            return coin
        if "value" in args:
            value = _int_arg(args, "value")
            for coin, credit in enumerate(self.setup.coin_credits):
                if credit and self._minor(credit) == value:
                    return coin
            raise ValueError(f"no coin type is worth {value} minor units")
        raise ValueError(f"{action} needs 'coin_type' or 'value' (minor units)")

    def _queue(self, item: bytes) -> None:
        self._pending.append(item)

    def _insert_coin(self, args: dict[str, Any], _now: float) -> dict[str, object]:
        coin = self._coin_type_arg(args, "insert_coin")
        value = self._minor(self.setup.coin_credits[coin])
        if not self.plugged or self.jammed:
            reason = "unplugged" if not self.plugged else "jammed"
            return {"accepted": False, "coin_type": coin, "reason": reason}
        if coin not in self.enabled:
            self._queue(CoinDeposited(coin, Route.REJECTED, self.tubes[coin]).to_bytes())
            return {"accepted": False, "coin_type": coin, "reason": "disabled"}
        if coin in self.setup.routing and self.tubes[coin] < self.tube_capacity:
            self.tubes[coin] += 1
            route = Route.TUBE
        else:
            self.cash_box[coin] += 1
            route = Route.CASH_BOX
        self._queue(CoinDeposited(coin, route, min(self.tubes[coin], 0xFF)).to_bytes())
        return {"accepted": True, "coin_type": coin, "route": route.name.lower(), "value": value}

    def _insert_slug(self, _args: dict[str, Any], _now: float) -> dict[str, object]:
        if self.plugged and not self.jammed:
            self._queue(SlugsDetected(1).to_bytes())
        return {"accepted": False, "reason": "slug"}

    def _status(self, code: StatusCode) -> None:
        if self.plugged:
            self._queue(ChangerStatus(code).to_bytes())

    def _press_return_lever(self, _args: dict[str, Any], _now: float) -> dict[str, object]:
        self._status(StatusCode.ESCROW_REQUEST)
        return {"pressed": True}

    def _jam(self, _args: dict[str, Any], _now: float) -> dict[str, object]:
        self.jammed = True
        self._status(StatusCode.COIN_JAM)
        return {"jammed": True}

    def _tube_jam(self, _args: dict[str, Any], _now: float) -> dict[str, object]:
        self.tube_jammed = True
        self._status(StatusCode.TUBE_JAM)
        return {"tube_jammed": True}

    def _clear_jam(self, _args: dict[str, Any], _now: float) -> dict[str, object]:
        self.jammed = self.tube_jammed = False
        return {"jammed": False, "tube_jammed": False}

    def _busy_for(self, args: dict[str, Any], now: float) -> dict[str, object]:
        seconds = args.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise ValueError(f"busy needs 'seconds' >= 0, got {seconds!r}")
        self._busy_until = now + float(seconds)
        return {"busy_until": self._busy_until}

    def _unplug(self, _args: dict[str, Any], _now: float) -> dict[str, object]:
        self.plugged = False
        return {"plugged": False}

    def _plug(self, _args: dict[str, Any], _now: float) -> dict[str, object]:
        if not self.plugged:
            self.plugged = True
            self._payout = None
            self._restart()
        return {"plugged": True}

    def _power_cycle(self, _args: dict[str, Any], _now: float) -> dict[str, object]:
        stopped = self._payout is not None
        self._restart()
        return {"payout_stopped": stopped}

    def _set_tubes(self, args: dict[str, Any], _now: float) -> dict[str, object]:
        counts = args.get("counts")
        if not isinstance(counts, list) or len(counts) > COIN_TYPES:
            raise ValueError("set_tubes needs 'counts': a list of at most 16 integers")
        if any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= 0xFF for c in counts):
            raise ValueError(f"tube counts must be integers 0..255, got {counts!r}")
        self.tubes = list(counts) + [0] * (COIN_TYPES - len(counts))
        return {"tubes": self.tubes[: self._types]}

    def _count_arg(self, args: dict[str, Any]) -> int:
        count = _int_arg(args, "count")
        if count < 0:
            raise ValueError(f"'count' must be >= 0, got {count}")
        return count

    def _fill(self, args: dict[str, Any], _now: float) -> dict[str, object]:
        coin = self._coin_type_arg(args, "fill")
        added = min(self._count_arg(args), self.tube_capacity - self.tubes[coin])
        added = max(added, 0)
        self.tubes[coin] += added
        self._manual_fill_report[coin] += added
        return {"coin_type": coin, "added": added, "tube_count": self.tubes[coin]}

    def _manual_dispense(self, args: dict[str, Any], _now: float) -> dict[str, object]:
        coin = self._coin_type_arg(args, "manual_dispense")
        wanted = self._count_arg(args)
        if coin not in self.manual_enabled:
            return {"coin_type": coin, "dispensed": 0, "reason": "not_enabled"}
        paid = min(wanted, self.tubes[coin])
        left = paid
        while left > 0:  # the item's count field holds at most 7 coins
            take = min(left, 7)
            left -= take
            self.tubes[coin] -= take
            self._queue(CoinsDispensedManually(coin, take, self.tubes[coin]).to_bytes())
        self.manually_paid[coin] += paid
        self._manual_payout_report[coin] += paid
        return {"coin_type": coin, "dispensed": paid, "tube_count": self.tubes[coin]}


def _int_arg(args: dict[str, Any], name: str) -> int:
    if name not in args:
        raise ValueError(f"missing argument {name!r}")
    value = args[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name!r} must be an integer, got {value!r}")
    return value
