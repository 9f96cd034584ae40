"""E-receipts end to end: a machine with ``[receipts]`` sells for cash, its sales cross a real
Mosquitto into a `vend fleet serve` process, and that process transmits each receipt to an
HTTP e-invoice provider that fails every first attempt.

The ledgers are compared from outside: the machine's journal (plain sqlite3), what the
provider stored, and the fleet database (plain SQL).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fleet.einvoice import ReceiptKey, ReceiptKind, idempotency_key
from fleet.store.db import make_engine
from fleet.store.einvoice_models import receipt_queue
from fleet.store.models import sales
from protocols.einvoice import Receipt, from_xml
from protocols.telemetry import SaleBody
from tests.e2e.test_receipts import ReceiptRig
from tests.fleet.einvoice.fake_provider import FakeProvider
from tests.fleet.test_service import unique, wait_until
from tests.fleet.test_workers import Serve
from tests.support.servers import Broker

pytestmark = [pytest.mark.e2e, pytest.mark.pty, pytest.mark.broker]

MACHINE = "vm-0005"
SALES = 2


def _telemetry(broker: Broker) -> dict[str, Any]:
    return {
        "broker": broker.url(),
        "password": broker.users[MACHINE],
        "command_key": "hex:" + bytes(range(32)).hex(),
        "max_backoff": 1.0,
    }


def _sell(rig: ReceiptRig) -> list[SaleBody]:
    rig.start_simulators()
    rig.start_machine()
    rig.wait_devices_ready()
    rig.fill_all()
    for _ in range(SALES):
        rig.buy_a1_with_cash()
    rig.wait_for(lambda: rig.status()["telemetry"]["backlog"] == 0, message="outbox drained")
    return rig.sales()


def _receipt(sale: SaleBody) -> Receipt:
    assert sale.receipt is not None, f"vend {sale.vend_id} left without a receipt"
    return sale.receipt


def _key(doc: Receipt) -> ReceiptKey:
    return ReceiptKey(MACHINE, doc.symbol, str(doc.number))


def _fleet_rows(db: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            queue = conn.execute(
                select(receipt_queue)
                .where(receipt_queue.c.machine_id == MACHINE)
                .order_by(receipt_queue.c.id)
            )
            sold = conn.execute(
                select(sales).where(sales.c.machine_id == MACHINE).order_by(sales.c.seq)
            )
            return [dict(r._mapping) for r in queue], [dict(r._mapping) for r in sold]
    finally:
        engine.dispose()


@pytest.mark.timeout(180)
async def test_each_sale_reaches_the_provider_once_as_its_receipt(
    tmp_path: Path, mosquitto: Broker
) -> None:
    db = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    rig = ReceiptRig(tmp_path, machine_id=MACHINE, telemetry=_telemetry(mosquitto))
    async with FakeProvider() as provider:
        provider.default = "fail"  # until every receipt has failed once
        serve = Serve(
            "--db", db, "--migrate", "--broker", mosquitto.url("fleet"), "--no-share",
            "--client-id", unique("receipts"), "--receipts-provider", provider.url,
        )  # fmt: skip
        try:
            await asyncio.to_thread(serve.wait_subscribed)
            try:
                journal = await asyncio.to_thread(_sell, rig)
            finally:
                await asyncio.to_thread(rig.stop_all)
            docs = [_receipt(sale) for sale in journal]
            ids = {idempotency_key(_key(d), ReceiptKind.ORIGINAL) for d in docs}

            def failed_once() -> bool:
                return ids <= {key for key, how in provider.seen if how == "fail"}

            await wait_until(failed_once, "a failed first attempt for every receipt")
            provider.default = "accept"

            def all_accepted() -> bool:
                queue, _ = _fleet_rows(db)
                return len(queue) == SALES and all(r["state"] == "accepted" for r in queue)

            await wait_until(all_accepted, "every receipt accepted")
        finally:
            code = await asyncio.to_thread(serve.stop)
    assert code == 0, "".join(serve.lines)

    assert len(journal) == SALES
    mine = {k: s for k, s in provider.stored.items() if s.receipt_key.startswith(f"{MACHINE}/")}
    assert set(mine) == ids
    for sale, doc in zip(journal, docs, strict=True):
        key = idempotency_key(_key(doc), ReceiptKind.ORIGINAL)
        assert provider.records[str(_key(doc))] == 1  # stored exactly once
        assert next(how for k, how in provider.seen if k == key) == "fail"
        sent = from_xml(mine[key].document)
        assert sent == doc  # the document the customer was given, unchanged
        assert sale.receipt_number == f"{sent.symbol}-{sent.number:08d}"
        assert sent.total == sale.price == 12_000
        assert [(ln.product, ln.code, ln.quantity, ln.amount) for ln in sent.lines] == [
            (sale.product, sale.selection, 1, sale.price)
        ]
    assert sorted(d.number for d in docs) == list(range(1, SALES + 1))

    queue, sold = _fleet_rows(db)
    assert [(r["number"], r["state"], r["provider_ref"]) for r in queue] == [
        (str(d.number), "accepted", mine[idempotency_key(_key(d), ReceiptKind.ORIGINAL)].ref)
        for d in docs
    ]
    assert all(r["attempts"] >= 2 for r in queue)  # the failure was really retried
    assert [
        (r["receipt_number"], r["receipt_symbol"], r["receipt_no"], r["receipt_total"])
        for r in sold
        if r["receipt_no"] is not None
    ] == [
        (s.receipt_number, d.symbol, d.number, d.total) for s, d in zip(journal, docs, strict=True)
    ]
    assert [r["sale_seq"] for r in queue] == [r["seq"] for r in sold if r["receipt_no"] is not None]
