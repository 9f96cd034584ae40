"""`vend demo`: a small fleet, end to end, on one host.

Order of things: the fleet (broker + service + database) comes up first, then every
machine (three processes each), then all machines are filled to par by a service
visit, then customers shop while the fault plan runs; at the end customers stop, cash
is collected, the fleet catches up, and the summary is built from the fleet database
and the machines' own journals.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.live import Live
from sqlalchemy import Engine

from cli.demo import faults as f
from cli.demo.cabinet import DemoCabinet
from cli.demo.cabinet_report import cabinet_summary
from cli.demo.cabinet_shoppers import CabinetShopper, CabinetStats, assess_held_open, door_held_open
from cli.demo.dashboard import render
from cli.demo.endofday import (
    TZ_NAME,
    CardLedger,
    CashDrawer,
    count_cash,
    import_card_settlements,
    import_demo_master_data,
    plan_tomorrow,
    reconcile_day,
    record_count,
)
from cli.demo.fleet_side import DemoBroker, DemoFleet
from cli.demo.lineup import child_rng, lineup, telemetry_settings
from cli.demo.machines import DemoMachine
from cli.demo.shoppers import Shopper, ShopperStats
from cli.demo.summary import DemoSummary, build_summary, wait_caught_up
from cli.demo.view import read_view
from fleet.mqtt import BrokerAddress
from fleet.store.db import make_engine

MARKER = ".vendfleet-demo"
CUSTOMERS_PER_HOUR = 12  # per machine, in simulated time
MIN_GAP = 1.0  # seconds of wall time between two customers of one machine


class DemoError(RuntimeError):
    """The demo cannot run as asked (folder in use, a machine does not start...)."""


@dataclass(frozen=True)
class DemoOptions:
    machines: int = 5
    minutes: float = 3.0
    speed: float = 60.0
    seed: int | None = None
    broker: str | None = None
    db: str | None = None
    folder: Path = Path("vendfleet-demo")
    headless: bool = False
    faults: bool = True
    store: bool = True  # a store: a kiosk (baskets from two towers) and a smart cabinet


@dataclass
class DemoRun:
    options: DemoOptions
    folder: Path
    db_url: str
    address: BrokerAddress
    machines: list[DemoMachine] = field(default_factory=list)
    shoppers: list[Shopper] = field(default_factory=list)
    stats: ShopperStats = field(default_factory=ShopperStats)
    log: f.FaultLog = field(default_factory=f.FaultLog)
    stop_shopping: threading.Event = field(default_factory=threading.Event)
    ledger: CardLedger = field(default_factory=CardLedger)
    cabinet_stats: CabinetStats = field(default_factory=CabinetStats)
    drawers: dict[str, CashDrawer] = field(default_factory=dict)
    end_early: asyncio.Event = field(default_factory=asyncio.Event)


def _install_signals(run: DemoRun) -> None:
    """Ctrl-C once ends the shopping day early (the summary still comes); twice, or
    SIGTERM / SIGHUP, stops at once. Either way every machine process is stopped: they
    run in their own sessions, so nobody else will."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None

    def interrupt() -> None:
        if run.end_early.is_set():
            main.cancel()
        else:
            run.log.note("Ctrl-C: ending the day early (again to stop at once)")
            run.end_early.set()

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, interrupt)
        loop.add_signal_handler(signal.SIGTERM, main.cancel)
        loop.add_signal_handler(signal.SIGHUP, main.cancel)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def prepare_folder(folder: Path) -> Path:
    """A fresh demo folder; an earlier demo's is replaced, anything else is left alone."""
    folder = folder.resolve()
    if folder.exists():
        if not (folder / MARKER).exists() and any(folder.iterdir()):
            raise DemoError(f"{folder} exists and is not a demo folder; choose another --dir")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text("created by vend demo; replaced by the next run\n")
    return folder


async def run_demo(
    options: DemoOptions,
    console: Console,
    on_progress: Callable[[str], None] | None = None,
) -> DemoSummary:
    say = on_progress or (lambda _text: None)
    folder = prepare_folder(options.folder)
    db_url = options.db or f"sqlite:///{folder / 'fleet.sqlite'}"
    embedded = options.broker is None
    address = (
        BrokerAddress("127.0.0.1", free_port())
        if embedded
        else BrokerAddress.from_url(options.broker or "")
    )
    run = DemoRun(options, folder, db_url, address)
    _install_signals(run)
    rng = random.Random(options.seed)  # noqa: S311  (simulated customers, not secrets)
    engine = make_engine(db_url)
    fleet = DemoFleet(engine, DemoBroker(address, embedded=embedded), folder / "e-receipts")
    run.machines = lineup(
        folder / "machines",
        machines=options.machines,
        store=options.store,
        telemetry=telemetry_settings(address, embedded=embedded),
        rng=rng,
    )
    try:
        say("migrating the fleet database and starting the broker and fleet service")
        await asyncio.to_thread(fleet.migrate, {m.machine_id: m.command_key for m in run.machines})
        await fleet.start()
        await asyncio.to_thread(import_demo_master_data, engine, folder, run.machines, rng.random())
        for n, machine in enumerate(run.machines, 1):
            say(f"starting machine {n}/{len(run.machines)}: {machine.machine_id}")
            await asyncio.to_thread(machine.start)
        for machine in run.machines:
            await asyncio.to_thread(machine.wait_ready)
            await asyncio.to_thread(machine.fill)
        await _collect(run, engine, "demo-open")
        say("machines filled to par and their cash counted; customers arriving")
        await _shop(run, fleet, engine, console, rng)
        say("customers gone; collecting and counting cash, waiting for the fleet to catch up")
        await _collect(run, engine, "demo-close")
        await wait_caught_up(engine, run.machines, timeout=90)
        f.assess(engine, run.log.faults)
        for fault in run.log.faults:
            if fault.kind == "door_held_open":
                assess_held_open(engine, fault)
        say("importing the card processor's settlement file and reconciling the day")
        await asyncio.to_thread(import_card_settlements, engine, run.ledger, folder)
        reconciliation = await asyncio.to_thread(reconcile_day, engine, _today())
        say("planning tomorrow's restocking")
        plan = await asyncio.to_thread(plan_tomorrow, engine, datetime.now(UTC))
        summary = await asyncio.to_thread(build_summary, engine, run, fleet.service.stats.report)
        summary.add_end_of_day(reconciliation, plan)
        for machine in run.machines:
            if isinstance(machine, DemoCabinet):
                summary.data["cabinet"] = await asyncio.to_thread(
                    cabinet_summary, engine, machine, run.cabinet_stats, reconciliation, plan
                )
    finally:
        run.stop_shopping.set()
        for machine in run.machines:
            await asyncio.to_thread(machine.stop)
        await fleet.stop()
        engine.dispose()
    return summary


async def _shop(
    run: DemoRun, fleet: DemoFleet, engine: object, console: Console, rng: random.Random
) -> None:
    opts = run.options
    mean_gap = max(MIN_GAP, 3600.0 / (CUSTOMERS_PER_HOUR * opts.speed))
    for machine in run.machines:
        shopper = (
            CabinetShopper(
                machine,
                child_rng(rng),
                mean_gap,
                stop=run.stop_shopping,
                stats=run.stats,
                ledger=run.ledger,
                cabinet_stats=run.cabinet_stats,
            )
            if isinstance(machine, DemoCabinet)
            else Shopper(
                machine,
                child_rng(rng),
                mean_gap,
                stop=run.stop_shopping,
                stats=run.stats,
                ledger=run.ledger,
            )
        )
        run.shoppers.append(shopper)
        shopper.start()
    total = opts.minutes * 60.0
    t0 = time.monotonic()
    run.log.t0 = t0
    plan = asyncio.create_task(_fault_plan(run, fleet, total)) if opts.faults else None
    live: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if not opts.headless:
        live = Live(console=console, refresh_per_second=2, screen=False, transient=False)
    try:
        with live as screen:
            while (elapsed := time.monotonic() - t0) < total and not run.end_early.is_set():
                if fleet.failed is not None:
                    raise DemoError(f"the fleet service stopped: {fleet.failed}")
                if isinstance(screen, Live):
                    view = await asyncio.to_thread(read_view, engine, datetime.now(UTC))  # type: ignore[arg-type]
                    screen.update(
                        render(
                            view,
                            elapsed=elapsed,
                            minutes=opts.minutes,
                            broker_up=fleet.broker.up,
                            timeline=run.log.timeline,
                            where=str(run.folder),
                        )
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(run.end_early.wait(), 1.0)
            if plan is not None and not run.end_early.is_set():
                await plan  # a fault still being handled finishes before the day ends
    finally:
        run.stop_shopping.set()
        if plan is not None and not plan.done():
            plan.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await plan
        for shopper in run.shoppers:
            await asyncio.to_thread(shopper.join, 30)


async def _fault_plan(run: DemoRun, fleet: DemoFleet, total: float) -> None:
    """Jam at 20 %, broker outage at 35 %, jam serviced at 50 %, power cut at 65 %; and
    alongside, the store's cabinet door held open at 45 %."""
    log = run.log
    t0 = log.t0

    async def at(share: float) -> datetime:
        await asyncio.sleep(max(0.0, t0 + share * total - time.monotonic()))
        return datetime.now(UTC)

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(_street_faults(run, fleet, total, at))
            for shopper in run.shoppers:
                if isinstance(shopper, CabinetShopper):
                    tg.create_task(_cabinet_fault(shopper, log, at))
    except BaseExceptionGroup as group:
        raise group.exceptions[0] from None  # the caller reports the first failure


async def _cabinet_fault(
    shopper: CabinetShopper, log: f.FaultLog, at: Callable[[float], Awaitable[datetime]]
) -> None:
    await door_held_open(shopper, log, await at(0.45))


async def _street_faults(
    run: DemoRun, fleet: DemoFleet, total: float, at: Callable[[float], Awaitable[datetime]]
) -> None:
    machines, shoppers, log = run.machines, run.shoppers, run.log
    vending = [m for m in machines if not m.in_store]  # these faults hit street machines
    jammed = await f.jam(vending[0], shoppers[0], log, await at(0.20))
    if fleet.broker.embedded:
        await f.broker_outage(fleet, max(6.0, 0.08 * total), log, await at(0.35))
    else:
        log.note("broker outage skipped: the broker is external (--broker)")
    await f.clear_jam(vending[0], shoppers[0], jammed, log)
    victim = vending[-1]
    await f.power_cut(victim, log, await at(0.65), off=3.0)


def _today() -> date:
    return datetime.now(ZoneInfo(TZ_NAME)).date()


async def _collect(run: DemoRun, engine: Engine, visit: str) -> None:
    """A cash collection on every machine: the machine records it (door open, collect),
    the collector counts the bag, the count is entered for the reconciliation."""

    def collect(machine: DemoMachine) -> None:
        machine.wait_idle()
        machine.panel("service_open")
        try:
            machine.panel("cash_collect")
            drawer = run.drawers.setdefault(machine.machine_id, CashDrawer())
            coins, bills = count_cash(machine, drawer)
        finally:
            machine.panel("service_close")
        record_count(
            engine, machine.machine_id, visit, at=datetime.now(UTC), coins=coins, bills=bills
        )

    for machine in run.machines:
        await asyncio.to_thread(collect, machine)
