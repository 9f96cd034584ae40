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
measures. ``--scale 0.1`` finishes in well under a minute.
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
from collections.abc import Iterator
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
T0 = datetime(2026, 3, 1, tzinfo=UTC)
IN_FLIGHT = 200


def payloads(machines: int, per_machine: int, prefix: str) -> list[tuple[str, bytes]]:
    """Sales, round-robin over machines (as when many outboxes drain at once)."""
    out = []
    for seq in range(1, per_machine + 1):
        for m in range(machines):
            mid = f"{prefix}-{m:05d}"
            body = SaleBody(
                vend_id=seq,
                selection="A1",
                product="Trà xanh Không Độ 455ml",
                price=12000,
                currency="VND",
                method=PaymentMethod.CASHLESS,
                reader=1,
                payment_ref=f"r{seq}",
            )
            env = make_envelope(
                body, machine_id=mid, boot_id=1, seq=seq, ts=T0 + timedelta(seconds=seq)
            )
            out.append((topic_for(mid, "sale"), encode(env)))
    return out


# --- the publisher process ---------------------------------------------------------------


def _publisher(
    url: str, machines: int, per_machine: int, prefix: str, go: object, out: object
) -> None:
    messages = payloads(machines, per_machine, prefix)
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


class Publisher:
    def __init__(self, url: str, machines: int, per_machine: int, prefix: str) -> None:
        ctx = mp.get_context("spawn")
        self.go, self.out = ctx.Event(), ctx.Queue()
        self.proc = ctx.Process(
            target=_publisher, args=(url, machines, per_machine, prefix, self.go, self.out)
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

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass(frozen=True)
class Drain:
    seconds: float  # first publish to last committed row
    busy: float  # share of both cores busy meanwhile
    worker_us: float  # worker CPU per message, all workers together


def workers(broker: Broker, pg: Postgres, count: int, n_machines: int, per: int, tag: str) -> Drain:
    db = pg.create_database(f"bench_{tag}_{uuid.uuid4().hex[:6]}")
    engine = make_engine(db)
    upgrade(engine)
    group = f"g-{tag}-{uuid.uuid4().hex[:4]}"
    running = [Worker(db, broker, group) for _ in range(count)]
    pub = Publisher(broker.url("fleet"), n_machines, per, tag)
    total = n_machines * per
    try:
        cpu0, busy0 = sum(w.cpu_seconds() for w in running), machine_busy()
        pub.start()
        with engine.connect() as conn:
            while conn.execute(select(func.count()).select_from(events)).scalar_one() < total:
                conn.rollback()
                time.sleep(0.05)
        end = time.time()
        busy1, cpu1 = machine_busy(), sum(w.cpu_seconds() for w in running)
        start, _ = pub.finish()
    finally:
        for worker in running:
            worker.stop()
        engine.dispose()
    share = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    return Drain(end - start, share, (cpu1 - cpu0) / total * 1e6)


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
    return f"cores {drain.busy:.0%} busy, workers {drain.worker_us:.0f} us CPU/msg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 20,000 messages per "
                        "throughput run and the full 1,000 x 200 backlog")  # fmt: skip
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    per = 20
    machines = max(10, int(1000 * args.scale))  # throughput runs: machines x 20 events
    backlog_machines = max(10, int(1000 * args.scale))
    n = machines * per
    with servers(not args.no_postgres) as (broker, pg), tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        raw_rate = raw(broker, machines, per)
        sqlite_rate = in_process(broker, f"sqlite:///{tmp}/bench.sqlite", machines, per, "sq")
        rows = [
            ("raw Mosquitto QoS 1 publish -> subscriber", f"{raw_rate:8.0f} msg/s", "baseline"),
            ("ingest, SQLite (publish -> committed)", f"{sqlite_rate:8.0f} msg/s",
             f"{sqlite_rate / raw_rate:4.2f} x raw (target >= 0.5)"),
        ]  # fmt: skip
        if pg is not None:
            pg_rate = in_process(broker, pg.create_database("bench_inproc"), machines, per, "pg")
            rows.append(("ingest, PostgreSQL (publish -> committed)", f"{pg_rate:8.0f} msg/s",
                         f"{pg_rate / raw_rate:4.2f} x raw (target >= 0.5)"))  # fmt: skip
            one = workers(broker, pg, 1, machines, per, "one")
            two = workers(broker, pg, 2, machines, per, "two")
            rows.append(("1 worker process, PostgreSQL", f"{n / one.seconds:8.0f} msg/s",
                         cpu_note(one)))  # fmt: skip
            rows.append(("2 worker processes, PostgreSQL", f"{n / two.seconds:8.0f} msg/s",
                         f"{one.seconds / two.seconds:4.2f} x one (target >= 1.3); "
                         + cpu_note(two)))  # fmt: skip
            drain = workers(broker, pg, 2, backlog_machines, 200, "backlog")
            rows.append((f"backlog {backlog_machines} machines x 200, 2 workers",
                         f"{drain.seconds:8.1f} s",
                         f"{backlog_machines * 200 / drain.seconds:.0f} msg/s (target <= 60 s "
                         "at 1,000 machines); " + cpu_note(drain)))  # fmt: skip
    print(f"fleet ingest, {n} sales per throughput run (scale {args.scale})")
    for name, figure, target in rows:
        print(f"{name:48} {figure:>16}   {target}")


if __name__ == "__main__":
    main()
