from __future__ import annotations

import importlib.util

import pytest

from drivers.sim.base import SimBus
from drivers.sim.presets import bus_reset, default_devices, device_names
from protocols.mdb.wire import Data
from tests.drivers.link.fakes import FakeChanger, PlainPeripheral


def test_device_names_follow_mdb_addresses() -> None:
    changer, plain = FakeChanger(), PlainPeripheral()
    assert device_names(SimBus(changer, plain)) == {"changer": changer, "cashless1": plain}


def test_bus_reset_uses_power_cycle_or_the_reset_command() -> None:
    changer, plain = FakeChanger(), PlainPeripheral()
    assert bus_reset(SimBus(changer, plain), 0.0) == {
        "changer": "power_cycle",
        "cashless1": "reset_command",
    }
    assert changer.power_cycles == 1
    assert plain.handled == [b"\x10"]


def test_unplugged_device_without_power_cycle_is_skipped() -> None:
    plain = PlainPeripheral()
    plain.plugged = False
    assert bus_reset(SimBus(plain), 0.0) == {"cashless1": "skipped"}
    assert plain.handled == []


@pytest.mark.parametrize("currency", ["XYZ", "EURO", "", "12A"])
def test_bad_currency_is_refused_before_anything_is_built(currency: str) -> None:
    with pytest.raises(ValueError, match="known 3-letter ISO 4217 code"):
        default_devices(currency)


_SIMS = all(
    importlib.util.find_spec(f"drivers.sim.{m}") is not None
    for m in ("changer", "bill", "cashless")
)


@pytest.mark.skipif(not _SIMS, reason="device simulators not built yet")
def test_default_devices_are_the_three_simulators() -> None:
    devices = default_devices("VND")
    assert sorted(devices) == ["bill", "cashless1", "changer"]
    assert device_names(SimBus(*devices.values())) == devices


@pytest.mark.skipif(not _SIMS, reason="device simulators not built yet")
@pytest.mark.parametrize(
    ("currency", "mdb_code"), [("EUR", "1978"), ("JPY", "1392"), ("VND", "1704")]
)
def test_currency_reaches_every_device_setup(currency: str, mdb_code: str) -> None:
    # Each device's SETUP answer carries the currency code (changer bytes 1-2, bill 1-2,
    # reader config 2-3), so read it off the wire rather than from the objects.
    devices = default_devices(currency)
    for name, setup in (
        ("changer", b"\x09"),
        ("bill", b"\x31"),
        ("cashless1", b"\x11\x00\x03\x00\x00\x00"),
    ):
        device = devices[name]
        device.handle(bytes((device.addresses[0],)), 0.0)  # RESET
        answer = device.handle(setup, 0.0)
        assert isinstance(answer, Data), name
        assert mdb_code in answer.payload.hex(), (name, answer.payload.hex())
