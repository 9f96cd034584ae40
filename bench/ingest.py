"""Fleet ingest throughput: publish -> committed row, against the raw broker.

Starts its own Mosquitto and PostgreSQL (tests/support/servers.py) and measures, in one
run:

* raw: QoS 1 publish -> a plain aiomqtt subscriber (the baseline);
* ingest on SQLite and on PostgreSQL: the same publish -> rows committed by the fleet
  service (FleetService in this process, where the raw subscriber also ran);
* one versus two ingest worker processes (`vend fleet serve`, one shared group) on
  PostgreSQL;
* a backlog of 1,000 machines x 200 events (every machine draining its outbox at once)
  into two workers on PostgreSQL, until the last row is committed.

The publisher is a separate process, so it does not share a core's GIL with what it
measures. Every sale carries its e-receipt, as machines in the first market send them
(``--no-receipts`` for bare sales). Each line notes the load average before it ran, and
the worker runs split the machine's CPU between broker, PostgreSQL, publisher and
workers (from /proc, over the processes this script started), because the box's two
cores are shared by all of them. ``--scale 0.1`` finishes in well under a minute.
Targets (TARGETS.md): ingest >= 0.5 x raw; two workers >= 1.3 x one; backlog <= 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiomqtt
from sqlalchemy import func, select

from fleet.mqtt import BrokerAddress
from fleet.service import FleetService, ServiceOptions
from fleet.store.db import make_engine
from fleet.store.models import events
from fleet.store.schema import upgrade
from protocols.einvoice import Payment, Receipt, SaleItem, Seller, build_receipt
from protocols.money import Money
from protocols.telemetry import (
    PaymentMethod,
    SaleBody,
    encode,
    make_envelope,
    topic_for,
)
from tests.support.servers import Broker, Postgres, run_mosquitto, run_postgres

ROOT = Path(__file__).resolve().parent.parent
USERS = {"fleet": "fleet-secret"}
PRODUCT = "Trà xanh Không Độ 455ml"
SELLER = Seller(name="Công ty TNHH Máy Bán Hàng Tự Động", tax_code="0312345678", address="Q1")
T0 = datetime(2026, 3, 1, tzinfo=UTC)
IN_FLIGHT = 200


def receipt(number: int) -> Receipt:
    return build_receipt(
        symbol="1C26MAB",
        number=number,
        issued_at=T0 + timedelta(seconds=number),
        seller=SELLER,
        items=[SaleItem(PRODUCT, 1, Money(12000, "VND"), "8%", code="A1")],
        payment=Payment.CASHLESS,
        secret=b"bench-lookup-secret",
    )


def payloads(
    machines: int, per_machine: int, prefix: str, *, receipts: bool
) -> list[tuple[str, bytes]]:
    """Sales, round-robin over machines (as when many outboxes drain at once)."""
    out = []
    for seq in range(1, per_machine + 1):
        doc = receipt(seq) if receipts else None  # keyed by machine too: one per seq will do
        for m in range(machines):
            mid = f"{prefix}-{m:05d}"
            body = SaleBody(
                vend_id=seq,
                selection="A1",
                product=PRODUCT,
                price=12000,
                currency="VND",
                method=PaymentMethod.CASHLESS,
                reader=1,
                payment_ref=f"r{seq}",
                receipt=doc,
                receipt_number=None if doc is None else f"{doc.symbol}-{doc.number:08d}",
            )
            env = make_envelope(
                body, machine_id=mid, boot_id=1, seq=seq, ts=T0 + timedelta(seconds=seq)
            )
            out.append((topic_for(mid, "sale"), encode(env)))
    return out


# --- the publisher process ---------------------------------------------------------------


def _publisher(
    url: str, machines: int, per_machine: int, prefix: str, receipts: bool, go: object, out: object
) -> None:
    messages = payloads(machines, per_machine, prefix, receipts=receipts)
    address = BrokerAddress.from_url(url)

    async def run() -> tuple[float, float]:
        async with aiomqtt.Client(
            address.host, address.port, username=address.username, password=address.password,
            identifier=f"bench-pub-{uuid.uuid4().hex[:6]}", protocol=aiomqtt.ProtocolVersion.V5,
            max_inflight_messages=IN_FLIGHT,
        ) as client:  # fmt: skip
            client.pending_calls_threshold = IN_FLIGHT * 2
            gate = asyncio.Semaphore(IN_FLIGHT)

            async def one(topic: str, payload: bytes) -> None:
                async with gate:
                    await client.publish(topic, payload, qos=1)

            out.put(("ready", 0.0))  # type: ignore[attr-defined]
            go.wait()  # type: ignore[attr-defined]
            start = time.time()
            await asyncio.gather(*(one(t, p) for t, p in messages))
            return start, time.time()

    start, end = asyncio.run(run())
    out.put(("done", start))  # type: ignore[attr-defined]
    out.put(("end", end))  # type: ignore[attr-defined]


RECEIPTS = True  # set from the command line


class Publisher:
    def __init__(self, url: str, machines: int, per_machine: int, prefix: str) -> None:
        ctx = mp.get_context("spawn")
        self.go, self.out = ctx.Event(), ctx.Queue()
        self.proc = ctx.Process(
            target=_publisher,
            args=(url, machines, per_machine, prefix, RECEIPTS, self.go, self.out),
        )
        self.proc.start()
        kind, _ = self.out.get(timeout=300)
        assert kind == "ready"

    def start(self) -> None:
        self.go.set()

    def finish(self) -> tuple[float, float]:
        _, start = self.out.get(timeout=600)
        _, end = self.out.get(timeout=600)
        self.proc.join(30)
        return start, end


# --- measurements --------------------------------------------------------------------------


def raw(broker: Broker, n_machines: int, per: int) -> float:
    pub = Publisher(broker.url("fleet"), n_machines, per, "raw")
    total = n_machines * per

    async def sub() -> float:
        async with aiomqtt.Client(
            broker.host, broker.port, username="fleet", password=USERS["fleet"],
            protocol=aiomqtt.ProtocolVersion.V5, identifier=f"raw-{uuid.uuid4().hex[:6]}",
        ) as client:  # fmt: skip
            await client.subscribe("vend/v1/+/sale", qos=1)
            pub.start()
            seen = 0
            async for _ in client.messages:
                seen += 1
                if seen == total:
                    return time.time()
        raise AssertionError("subscriber ended early")

    end = asyncio.run(sub())
    start, _ = pub.finish()
    return total / (end - start)


def in_process(broker: Broker, db_url: str, n_machines: int, per: int, tag: str) -> float:
    engine = make_engine(db_url)
    upgrade(engine)
    pub = Publisher(broker.url("fleet"), n_machines, per, tag)
    total = n_machines * per

    async def serve() -> float:
        options = ServiceOptions(group=f"g-{tag}", client_id=f"svc-{tag}", share=False)
        service = FleetService(engine, BrokerAddress.from_url(broker.url("fleet")), options)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        await asyncio.wait_for(service.connected.wait(), 30)
        pub.start()
        while service.stats.report.stored < total:  # noqa: ASYNC110  (poll the counter)
            await asyncio.sleep(0.005)
        end = time.time()
        stop.set()
        await task
        return end

    end = asyncio.run(serve())
    start, _ = pub.finish()
    engine.dispose()
    return total / (end - start)


class Worker:
    def __init__(self, db: str, broker: Broker, group: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from cli.fleet import app; app()", "serve", "-v",
             "--db", db, "--broker", broker.url("fleet"), "--group", group,
             "--client-id", f"{group}-{uuid.uuid4().hex[:6]}"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stderr is not None
        for raw_line in self.proc.stderr:
            if b"subscribed at" in raw_line:
                break
        else:
            raise RuntimeError("worker did not start")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


# --- where the CPU went --------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")
ROLES = ("workers", "postgres", "broker", "publisher", "bench")


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(command name, parent pid, CPU seconds) of a live process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text.rsplit(")", 1)[1].split()
    return name, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def _ours() -> dict[int, tuple[str, float]]:
    """CPU seconds of this script and every process it started, by pid, with a role."""
    table = {int(p.name): _stat(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()}
    children: dict[int, list[int]] = {}
    for pid, stat in table.items():
        if stat is not None:
            children.setdefault(stat[1], []).append(pid)
    found, todo = {}, [os.getpid()]
    while todo:
        pid = todo.pop()
        stat = table.get(pid)
        if stat is not None:
            role = {"mosquitto": "broker", "postgres": "postgres"}.get(stat[0], "bench")
            found[pid] = (role, stat[2])
        todo.extend(children.get(pid, ()))
    return found


def _machine() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / TICK, sum(values) / TICK


class CpuMeter:
    """CPU by role between :meth:`start` and :meth:`stop`, as shares of the whole machine."""

    def __init__(self, workers: Sequence[int], publisher: int) -> None:
        self.workers, self.publisher = set(workers), publisher

    def start(self) -> None:
        self.load = os.getloadavg()[0]
        self.before, self.machine0 = _ours(), _machine()

    def stop(self) -> None:
        after, machine1 = _ours(), _machine()
        self.capacity = machine1[1] - self.machine0[1]
        self.busy = machine1[0] - self.machine0[0]
        self.by_role = dict.fromkeys(ROLES, 0.0)
        self.per_worker: list[float] = []
        for pid, (kind, seconds) in after.items():
            used = seconds - self.before.get(pid, (kind, 0.0))[1]
            role = kind
            if pid in self.workers:
                role = "workers"
                self.per_worker.append(used)
            elif pid == self.publisher:
                role = "publisher"
            self.by_role[role] += used
        self.wall = self.capacity / (os.cpu_count() or 1)

    def note(self) -> str:
        cap = max(self.capacity, 1e-9)
        ours = sum(self.by_role.values())
        shares = ", ".join(f"{r} {self.by_role[r] / cap:.0%}" for r in ROLES[:4])
        cores = "/".join(f"{w / max(self.wall, 1e-9):.0%}" for w in self.per_worker)
        return (
            f"machine {self.busy / cap:.0%} busy: {shares}, others {(self.busy - ours) / cap:.0%}"
            f"; each worker {cores} of a core"
        )


@dataclass(frozen=True)
class Drain:
    seconds: float  # first publish to last committed row
    worker_us: float  # worker CPU per message, all workers together
    cpu: CpuMeter


def workers(broker: Broker, pg: Postgres, count: int, n_machines: int, per: int, tag: str) -> Drain:
    db = pg.create_database(f"bench_{tag}_{uuid.uuid4().hex[:6]}")
    engine = make_engine(db)
    upgrade(engine)
    group = f"g-{tag}-{uuid.uuid4().hex[:4]}"
    running = [Worker(db, broker, group) for _ in range(count)]
    pub = Publisher(broker.url("fleet"), n_machines, per, tag)
    meter = CpuMeter([w.proc.pid for w in running], pub.proc.pid or 0)
    total = n_machines * per
    try:
        meter.start()
        pub.start()
        with engine.connect() as conn:
            while conn.execute(select(func.count()).select_from(events)).scalar_one() < total:
                conn.rollback()
                time.sleep(0.05)
        end = time.time()
        meter.stop()
        start, _ = pub.finish()
    finally:
        for worker in running:
            worker.stop()
        engine.dispose()
    return Drain(end - start, sum(meter.per_worker) / total * 1e6, meter)


@contextlib.contextmanager
def servers(with_pg: bool) -> Iterator[tuple[Broker, Postgres | None]]:
    folder = Path(tempfile.mkdtemp(prefix="vend-bench-ingest-"))
    folder.chmod(0o755)  # the servers drop to their own users, who must reach their folders
    try:
        with run_mosquitto(folder / "mqtt", USERS) as broker:
            if not with_pg:
                yield broker, None
                return
            with run_postgres(folder / "pg") as pg:
                yield broker, pg
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def cpu_note(drain: Drain) -> str:
    return (
        f"load {drain.cpu.load:.1f} before; workers {drain.worker_us:.0f} us CPU/msg; "
        + drain.cpu.note()
    )


def show(name: str, figure: str, note: str) -> None:
    print(f"{name:44} {figure:>12}   {note}", flush=True)


def main() -> None:
    global RECEIPTS  # noqa: PLW0603  (the publisher processes read it)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 20,000 messages per "
                        "throughput run and the full 1,000 x 200 backlog")  # fmt: skip
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-receipts", action="store_true", help="sales without e-receipts")
    parser.add_argument("--skip-backlog", action="store_true")
    parser.add_argument("--pairs", type=int, default=1, help="one-vs-two-worker runs to repeat")
    args = parser.parse_args()
    RECEIPTS = not args.no_receipts
    per = 20
    machines = max(10, int(1000 * args.scale))  # throughput runs: machines x 20 events
    backlog_machines = max(10, int(1000 * args.scale))
    n = machines * per
    print(f"fleet ingest, {n} sales per throughput run (scale {args.scale}), "
          f"{'with' if RECEIPTS else 'without'} e-receipts", flush=True)  # fmt: skip
    with servers(not args.no_postgres) as (broker, pg), tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        load = os.getloadavg()[0]
        raw_rate = raw(broker, machines, per)
        show("raw Mosquitto QoS 1 publish -> subscriber", f"{raw_rate:6.0f} msg/s",
             f"baseline; load {load:.1f} before")  # fmt: skip
        load = os.getloadavg()[0]
        sqlite_rate = in_process(broker, f"sqlite:///{tmp}/bench.sqlite", machines, per, "sq")
        ratio = f"{sqlite_rate / raw_rate:4.2f} x raw (target >= 0.5)"
        show("ingest, SQLite (publish -> committed)", f"{sqlite_rate:6.0f} msg/s",
             f"{ratio}; load {load:.1f} before")  # fmt: skip
        if pg is None:
            return
        load = os.getloadavg()[0]
        pg_rate = in_process(broker, pg.create_database("bench_inproc"), machines, per, "pg")
        ratio = f"{pg_rate / raw_rate:4.2f} x raw (target >= 0.5)"
        show("ingest, PostgreSQL (publish -> committed)", f"{pg_rate:6.0f} msg/s",
             f"{ratio}; load {load:.1f} before")  # fmt: skip
        for pair in range(args.pairs):
            one = workers(broker, pg, 1, machines, per, f"one{pair}")
            show("1 worker process, PostgreSQL", f"{n / one.seconds:6.0f} msg/s", cpu_note(one))
            two = workers(broker, pg, 2, machines, per, f"two{pair}")
            gain = f"{one.seconds / two.seconds:4.2f} x one (target >= 1.3); "
            show("2 worker processes, PostgreSQL", f"{n / two.seconds:6.0f} msg/s",
                 gain + cpu_note(two))  # fmt: skip
        if args.skip_backlog:
            return
        drain = workers(broker, pg, 2, backlog_machines, 200, "backlog")
        show(f"backlog {backlog_machines} machines x 200, 2 workers", f"{drain.seconds:6.1f} s",
             f"{backlog_machines * 200 / drain.seconds:.0f} msg/s (target <= 60 s at 1,000 "
             "machines); " + cpu_note(drain))  # fmt: skip


if __name__ == "__main__":
    main()
