"""`vend demo`'s line-up without starting anything: which machines a run gets, the
machine.toml each one is started with (read back by the controller's own config
loader), and where the fleet's master data puts them."""

from __future__ import annotations

import random
import tomllib
from pathlib import Path

import pytest

from cli.demo.cabinet import DemoCabinet
from cli.demo.endofday import master_data_toml
from cli.demo.lineup import lineup, receipt_settings, telemetry_settings
from cli.demo.machines import DemoMachine
from controller.config import load_config
from fleet.mqtt import BrokerAddress


def _lineup(tmp_path: Path, *, store: bool, machines: int = 2) -> list[DemoMachine]:
    telemetry = telemetry_settings(BrokerAddress("127.0.0.1", 1883), embedded=True)
    return lineup(
        tmp_path, machines=machines, store=store, telemetry=telemetry, rng=random.Random(4)
    )


def test_the_store_brings_a_kiosk_and_a_smart_cabinet(tmp_path: Path) -> None:
    fleet = _lineup(tmp_path, store=True)
    in_store = [(m.machine_id, m.is_kiosk, m.is_cabinet) for m in fleet if m.in_store]
    street = [m.machine_id for m in fleet if not m.in_store]
    assert street == ["vm-0001", "vm-0002"]
    assert in_store == [("kiosk-0001", True, False), ("cabinet-0001", False, True)]
    # Every machine its own e-receipt series.
    symbols = [(m.receipts or {}).get("invoice_symbol") for m in fleet]
    assert None not in symbols
    assert len(set(symbols)) == len(symbols)


def test_no_store_drops_the_kiosk_and_the_cabinet(tmp_path: Path) -> None:
    fleet = _lineup(tmp_path, store=False, machines=3)
    assert [m.machine_id for m in fleet] == ["vm-0001", "vm-0002", "vm-0003"]
    assert not any(m.in_store for m in fleet)


def test_the_cabinet_config_is_a_cabinet_only_machine_the_controller_accepts(
    tmp_path: Path,
) -> None:
    cabinet = next(m for m in _lineup(tmp_path, store=True) if isinstance(m, DemoCabinet))
    cabinet.folder.mkdir(parents=True)
    cabinet.write_config()
    config = load_config(cabinet.config)
    assert config.selection == ()  # no selections: a card tap opens the cabinet
    assert config.units == ()
    section = config.cabinet
    assert section is not None
    assert section.url.startswith("serial://")
    # The shelves the machine prices are the planogram slots the fleet plans.
    shelves = {(s.code, s.product, s.price) for s in section.shelf}
    assert shelves == {(s.code, s.product, s.price) for s in cabinet.slots}
    # Three of the dearest items fit in the pre-authorisation: no sale is capped.
    assert 3 * max(s.price or 0 for s in section.shelf) <= section.pre_auth
    # A customer takes seconds; the demo's fault holds the door past this.
    assert section.held_open_limit_s == cabinet.held_open_limit_s
    assert config.receipts is not None
    assert config.telemetry is not None


@pytest.mark.parametrize("store", [True, False])
def test_master_data_puts_the_kiosk_and_the_cabinet_in_one_store(
    tmp_path: Path, store: bool
) -> None:
    fleet = _lineup(tmp_path, store=store)
    sites = {m.machine_id: (10.77, 106.70) for m in fleet}
    data = tomllib.loads(master_data_toml(fleet, sites))
    where = {s["machine_id"]: s["location_id"] for s in data["sites"]}
    stores = [loc["id"] for loc in data.get("locations", []) if loc["kind"] == "store"]
    if not store:
        assert stores == []
        assert len(set(where.values())) == len(fleet)  # every street machine its own site
        return
    (store_id,) = stores
    assert sorted(m for m, loc in where.items() if loc == store_id) == [
        "cabinet-0001",
        "kiosk-0001",
    ]
    slots = {(p["machine_id"], p["selection"]) for p in data["planogram"]}
    cabinet = next(m for m in fleet if m.is_cabinet)
    assert {s.code for s in cabinet.slots} == {
        sel for mid, sel in slots if mid == cabinet.machine_id
    }
    skus = {p["sku"] for p in data["products"]}
    assert {p["sku"] for p in data["planogram"]} <= skus


def test_receipt_series_differ_for_many_machines() -> None:
    symbols = {receipt_settings(n)["invoice_symbol"] for n in range(60)}
    assert len(symbols) == 60
