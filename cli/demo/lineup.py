"""Which machines a demo runs: street vending machines, and with the store its kiosk
(baskets from two towers) and its smart cabinet, each with its own e-receipt series.

Building the line-up starts nothing; :meth:`DemoMachine.start` does.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from cli.demo.cabinet import CABINET_ID, DemoCabinet
from cli.demo.catalog import KIOSK_UNITS, kiosk_slots, machine_ids, machine_slots
from cli.demo.machines import DemoMachine
from fleet.mqtt import BrokerAddress

KIOSK_ID = "kiosk-0001"
BACKLOG_ALARM = 5  # low, so the broker outage shows up as outbox_backlog alarms


def child_rng(rng: random.Random) -> random.Random:
    """An independent, reproducible stream for one machine or one customer queue."""
    return random.Random(rng.random())  # noqa: S311  (simulation, not secrets)


def receipt_settings(index: int) -> dict[str, object]:
    """Each machine its own cash-register e-invoice series under the operator's symbol."""
    series = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    letters = series[index // len(series) % len(series)] + series[index % len(series)]
    return {
        "invoice_symbol": f"1C{datetime.now(UTC).year % 100:02d}M{letters}",
        "seller_tax_code": "0312345678",
        "seller_name": "Công ty TNHH vendfleet Demo",
        "seller_address": "12 Lê Lợi, Quận 1, TP. Hồ Chí Minh",
        "vat_rate": "10%",
        "lookup_secret": "hex:" + "5a" * 16,
    }


def telemetry_settings(address: BrokerAddress, *, embedded: bool) -> dict[str, object]:
    return {
        "protocol": "3.1.1" if embedded else "5",
        "broker": f"mqtt://{address.host}:{address.port}",
        "password": "",
        "backlog_alarm": BACKLOG_ALARM,
        "max_backoff": 2.0,
        "keepalive": 5,
    }


def lineup(
    folder: Path,
    *,
    machines: int,
    store: bool,
    telemetry: dict[str, object] | None,
    rng: random.Random,
) -> list[DemoMachine]:
    """``machines`` vending machines, then (``store``) the kiosk and the cabinet; each
    in its own sub-folder of ``folder``."""
    out: list[DemoMachine] = [
        DemoMachine(
            folder / machine_id,
            machine_id,
            machine_slots(n, child_rng(rng)),
            telemetry,
            receipts=receipt_settings(n),
        )
        for n, machine_id in enumerate(machine_ids(machines))
    ]
    if store:
        out.append(
            DemoMachine(
                folder / KIOSK_ID,
                KIOSK_ID,
                kiosk_slots(),
                telemetry,
                receipts=receipt_settings(len(out)),
                units=KIOSK_UNITS,
            )
        )
        out.append(
            DemoCabinet(
                folder / CABINET_ID, CABINET_ID, telemetry, receipts=receipt_settings(len(out))
            )
        )
    return out
