"""Find and initialise every standard peripheral on a link: ``vend mdb probe``."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.bus import BusRunner
from drivers.link.base import MdbLink
from protocols.mdb.bill import BillValidatorMaster
from protocols.mdb.cashless import CashlessMaster
from protocols.mdb.changer import ChangerMaster
from protocols.mdb.device import DeviceMaster, DeviceState, Timing
from protocols.mdb.events import DeviceFault, DeviceOnline, MdbEvent
from protocols.money import Currency

# Probing gives up on a silent address quickly; an answering device gets the time it needs.
_PROBE_TIMING = Timing(probe_interval=0.5)


@dataclass
class ProbeResult:
    address: int
    device: str
    found: bool = False
    ready: bool = False
    info: dict[str, object] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "address": f"0x{self.address:02X}",
            "device": self.device,
            "found": self.found,
            "ready": self.ready,
            "info": self.info,
            "faults": self.faults,
        }


def standard_devices(currency: Currency, timing: Timing = _PROBE_TIMING) -> list[DeviceMaster]:
    return [
        ChangerMaster(currency, timing=timing),
        BillValidatorMaster(currency, timing=timing),
        CashlessMaster(currency, address=0x10, timing=timing),
        CashlessMaster(currency, address=0x60, timing=timing),
    ]


async def probe(link: MdbLink, currency: Currency, timeout: float = 5.0) -> list[ProbeResult]:
    """Initialise what answers within ``timeout`` seconds; report what each device said."""
    devices = standard_devices(currency)
    results = {d.address: ProbeResult(d.address, d.device) for d in devices}

    def collect(event: MdbEvent) -> None:
        result = results[event.address]
        if isinstance(event, DeviceOnline):
            result.ready = True
            result.info = event.info.describe()
        elif isinstance(event, DeviceFault):
            result.faults.append(f"{event.code}: {event.detail}")

    runner = BusRunner(link, devices, on_event=collect)

    def settled() -> bool:
        for device in devices:
            if device.state is not DeviceState.ABSENT:
                results[device.address].found = True
        # Done when every device that ever answered is ready and the silent ones had a try.
        return runner.stats.transactions >= 2 * len(devices) and all(
            d.state in (DeviceState.READY, DeviceState.ABSENT)
            and (d.state is DeviceState.READY or not results[d.address].found)
            for d in devices
        )

    await runner.run_until(settled, timeout)
    return [results[d.address] for d in devices]
