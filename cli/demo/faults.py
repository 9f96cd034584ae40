"""Faults the demo injects on purpose, and how it checks the fleet saw them handled.

* a jam: a spiral jams under a card customer; the reader refunds, the selection goes
  out of service (``jam`` alarm raised), a service visit clears it (alarm cleared);
* a broker outage: machines sell into their outboxes (``outbox_backlog`` alarms), the
  broker returns, everything drains, gaps are resynced;
* a power cut: one controller is SIGKILLed, the broker publishes its last will
  (offline), boot recovery settles whatever was in flight, it comes back online.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, select

from cli.demo.fleet_side import DemoFleet
from cli.demo.machines import DemoMachine
from cli.demo.shoppers import CARD_FUNDS, Shopper
from fleet.store.models import alarms, machines, status_reports


@dataclass
class Fault:
    kind: str  # jam | broker_outage | power_cut
    machine: str | None
    started: datetime
    detail: str = ""
    ended: datetime | None = None
    raised: bool = False
    cleared: bool = False

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "machine": self.machine,
            "detail": self.detail,
            "raised": self.raised,
            "cleared": self.cleared,
        }


@dataclass
class FaultLog:
    t0: float = field(default_factory=time.monotonic)
    faults: list[Fault] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        elapsed = time.monotonic() - self.t0
        self.timeline.append(f"{int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}  {text}")


def _jam_purchase(machine: DemoMachine, code: str) -> None:
    machine.wait_idle()
    machine.wait_accepting()
    machine.mdb.call("cashless1", "present_card", funds=CARD_FUNDS)
    machine.wait_for(
        lambda: machine.status()["display"]["message"] == "Choose a selection", 10, "card session"
    )
    machine.panel("select", code=code)
    machine.wait_for(
        lambda: (
            not next(s for s in machine.status()["selections"] if s["code"] == code)["in_service"]
        ),
        20,
        f"{code} out of service",
    )
    machine.wait_idle()


async def jam(machine: DemoMachine, shopper: Shopper, log: FaultLog, now: datetime) -> Fault:
    slot = machine.slots[0]
    fault = Fault("jam", machine.machine_id, now, f"selection {slot.code} ({slot.product})")
    log.faults.append(fault)
    await asyncio.to_thread(shopper.pause)
    try:
        machine.board.call("dispenser", "fault", motor=slot.motor, fault="jam")
        await asyncio.to_thread(_jam_purchase, machine, slot.code)
        log.note(f"jam: {machine.machine_id} {slot.code} jammed under a card sale -> refunded")
    finally:
        shopper.resume()
    return fault


def _service_jam(machine: DemoMachine, code: str, motor: int) -> None:
    machine.wait_idle()
    machine.panel("service_open")
    try:
        machine.board.call("dispenser", "service", motor=motor)
        machine.panel("in_service", code=code)
    finally:
        machine.panel("service_close")


async def clear_jam(machine: DemoMachine, shopper: Shopper, fault: Fault, log: FaultLog) -> None:
    slot = machine.slots[0]
    await asyncio.to_thread(shopper.pause)
    try:
        await asyncio.to_thread(_service_jam, machine, slot.code, slot.motor)
        log.note(f"service visit: {machine.machine_id} {slot.code} unjammed, back in service")
    finally:
        shopper.resume()
    fault.ended = datetime.now(fault.started.tzinfo)


async def broker_outage(fleet: DemoFleet, seconds: float, log: FaultLog, now: datetime) -> Fault:
    fault = Fault("broker_outage", None, now, f"{seconds:.0f} s without a broker")
    log.faults.append(fault)
    log.note(f"broker outage: broker stopped for {seconds:.0f} s, machines keep selling")
    await fleet.outage(seconds)
    fault.ended = datetime.now(now.tzinfo)
    log.note("broker back: outboxes drain, gaps resynced")
    return fault


async def power_cut(machine: DemoMachine, log: FaultLog, now: datetime, off: float) -> Fault:
    fault = Fault("power_cut", machine.machine_id, now, f"controller SIGKILLed, off {off:.0f} s")
    log.faults.append(fault)
    await asyncio.to_thread(machine.power_cut)
    log.note(f"power cut: {machine.machine_id} killed mid-run")
    try:
        await asyncio.sleep(off)
    finally:
        await asyncio.to_thread(machine.start_controller)  # power comes back regardless
    await asyncio.to_thread(machine.wait_ready)
    fault.ended = datetime.now(now.tzinfo)
    log.note(f"power back: {machine.machine_id} recovered its journal and is selling")
    return fault


def assess(engine: Engine, faults: list[Fault]) -> None:
    """Did the fleet see each fault raised and then cleared? Read from its database."""
    with engine.connect() as conn:
        for fault in faults:
            if fault.kind == "jam":
                rows = conn.execute(
                    select(alarms.c.raised_at, alarms.c.cleared_at).where(
                        alarms.c.machine_id == fault.machine, alarms.c.code == "jam"
                    )
                ).all()
                fault.raised = any(r.raised_at is not None for r in rows)
                fault.cleared = fault.raised and all(r.cleared_at is not None for r in rows)
            elif fault.kind == "broker_outage":
                rows = conn.execute(
                    select(alarms.c.raised_at, alarms.c.cleared_at).where(
                        alarms.c.code == "outbox_backlog"
                    )
                ).all()
                fault.raised = any(r.raised_at is not None for r in rows)
                fault.cleared = fault.raised and all(r.cleared_at is not None for r in rows)
            elif fault.kind == "power_cut":
                offline = conn.execute(
                    select(status_reports.c.boot_id).where(
                        status_reports.c.machine_id == fault.machine,
                        status_reports.c.online.is_(False),
                    )
                ).all()
                now_row = conn.execute(
                    select(machines.c.online, machines.c.boot_id).where(
                        machines.c.id == fault.machine
                    )
                ).first()
                fault.raised = bool(offline)
                fault.cleared = bool(
                    now_row is not None
                    and now_row.online
                    and offline
                    and (now_row.boot_id or 0) > min(r.boot_id for r in offline)
                )
