"""Ready-made simulated buses, the names operators use for their devices, and bus reset.

The device simulators are imported inside the functions so that this module (and
``memory://`` links, which fall back to :func:`default_bus`) imports on its own.
"""

from __future__ import annotations

from drivers.sim.base import SimBus, SimPeripheral
from protocols.mdb.wire import Data
from protocols.money import CURRENCIES, MoneyError, currency_to_mdb
from protocols.money import currency as money_currency

# Control-socket names by base address (MDB section 2).
DEVICE_NAMES: dict[int, str] = {
    0x08: "changer",
    0x30: "bill",
    0x10: "cashless1",
    0x60: "cashless2",
}


def default_devices(currency: str = "VND") -> dict[str, SimPeripheral]:
    """A changer, a bill validator and cashless reader #1, keyed by their control names.

    VND gets the simulators' own defaults (the first market). Other currencies get
    the MDB currency code and a plausible coin and bill set for their minor-unit
    digits: cents-based ones coins of 0.05..2.00 and bills of 5..100, zero-digit ones
    coins of 10..500 and bills of 1,000..10,000.
    """
    try:
        cur = money_currency(currency)
    except MoneyError:
        known = ", ".join(sorted(CURRENCIES))
        raise ValueError(
            f"currency must be a known 3-letter ISO 4217 code ({known}), not {currency!r}"
        ) from None
    from drivers.sim.bill import SimBillValidator  # noqa: PLC0415
    from drivers.sim.cashless import SimCashlessReader  # noqa: PLC0415
    from drivers.sim.changer import SimChanger  # noqa: PLC0415

    if cur.code == "VND":
        changer, bill = SimChanger(), SimBillValidator()
        reader = SimCashlessReader(address=0x10)
    else:
        code = currency_to_mdb(cur)
        cents = cur.minor_digits == 2
        changer = SimChanger(
            currency_code=code,
            scale_factor=5 if cents else 10,
            decimal_places=cur.minor_digits,
            coin_credits=(1, 2, 4, 10, 20, 40) if cents else (1, 5, 10, 50),
        )
        bill = SimBillValidator(
            currency_code=code,
            scale_factor=100 if cents else 1000,
            decimal_places=cur.minor_digits,
            bill_credits=(5, 10, 20, 50, 100) if cents else (1, 2, 5, 10),
        )
        reader = SimCashlessReader(
            address=0x10, currency_code=code, scale_factor=1, decimal_places=cur.minor_digits
        )
    return {"changer": changer, "bill": bill, "cashless1": reader}


def default_bus(currency: str = "VND") -> SimBus:
    return SimBus(*default_devices(currency).values())


def device_names(bus: SimBus) -> dict[str, SimPeripheral]:
    """Name every peripheral on ``bus`` (by its base address; unknown ones as ``dev_XX``)."""
    named: dict[str, SimPeripheral] = {}
    for p in bus.peripherals:
        base = p.addresses[0] if p.addresses else 0
        named[DEVICE_NAMES.get(base, f"dev_{base:02x}")] = p
    return named


def bus_reset(bus: SimBus, now: float) -> dict[str, str]:
    """What every peripheral does when the VMC holds the bus in break: it resets.

    A peripheral that offers a ``power_cycle`` control action gets it; any other is
    sent its RESET command (base address + 0, no data, in every device class), which
    has the same effect on its state. Returns how each device was reset.
    """
    how: dict[str, str] = {}
    for name, p in device_names(bus).items():
        try:
            p.control("power_cycle", {}, now)
            how[name] = "power_cycle"
        except ValueError:
            if not p.addresses or not p.plugged:
                how[name] = "skipped"
                continue
            answer = p.handle(bytes((p.addresses[0],)), now)
            if isinstance(answer, Data):
                p.acked(True)  # noqa: FBT003 - the base signature is positional
            how[name] = "reset_command"
    return how
