"""The machine's counters as a DEX / EVA-DTS audit file (``vend machine dex``).

Cumulative ("since initialisation") counters come straight from the replayed vend
session. Interim ("since last reset") counters are the difference from a snapshot
taken at the last read with reset, kept in the journal's meta table, so a read with
reset never touches the money journal itself. A smart cabinet's sales (paid by card,
one paid vend per item, the sku as the selection) come from its log
(:mod:`controller.cabinet_audit`) and add to the same counters.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from controller.cabinet_audit import CabinetSales, base_of, cabinet_sales
from controller.config import MachineConfig
from controller.journal import Journal
from protocols.dex.model import (
    AuditCounters,
    CashIn,
    CashlessDevice,
    CashOut,
    CoinTube,
    Selection,
    Tally,
    TubeFill,
)
from protocols.dex.writer import write_dex
from protocols.money import currency
from protocols.vend.session import VendSession

_SNAPSHOT_KEY = "dex_reset_snapshot"


def _snapshot(session: VendSession, cabinet: CabinetSales) -> dict[str, Any]:
    return {
        "counters": session.counters.model_dump(),
        "selections": {c: s.counters.model_dump() for c, s in session.selections.items()},
        "cabinet": cabinet.as_json(),
    }


def _tally(value: int, count: int, base_value: int, base_count: int) -> Tally:
    return Tally(value, count, value - base_value, count - base_count)


def audit_counters(
    cfg: MachineConfig,
    session: VendSession,
    snapshot: dict[str, Any],
    reads: int,
    last: datetime | None,
    *,
    cabinet: CabinetSales | None = None,
) -> AuditCounters:
    c = session.counters
    cab = cabinet or CabinetSales()
    cab_base = snapshot.get("cabinet", {})
    base = snapshot.get("counters", {})
    sel_base = snapshot.get("selections", {})

    def b(key: str) -> int:
        return int(base.get(key, 0))

    cur = currency(cfg.machine.currency)
    paid_value = c.cash_sales_value + c.cashless_sales_value + cab.value
    paid_count = c.cash_sales_count + c.cashless_sales_count + cab.count
    selections = []
    for code, st in session.selections.items():
        sc, sb = st.counters, sel_base.get(code, {})
        paid = _tally(
            sc.sales_value, sc.vends, int(sb.get("sales_value", 0)), int(sb.get("vends", 0))
        )
        test = _tally(0, sc.test_vends, 0, int(sb.get("test_vends", 0)))
        selections.append(
            Selection(selection=code, price=st.selection.price.minor, name=st.selection.product,
                      paid=paid, test=test)
        )  # fmt: skip
    selections = _with_cabinet(selections, cab, cab_base)
    cab_value, cab_count = base_of(cab_base)
    paid_base = (
        b("cash_sales_value") + b("cashless_sales_value") + cab_value,
        b("cash_sales_count") + b("cashless_sales_count") + cab_count,
    )
    cash_base = (b("cash_sales_value"), b("cash_sales_count"))
    card_base = (b("cashless_sales_value") + cab_value, b("cashless_sales_count") + cab_count)
    card = (c.cashless_sales_value + cab.value, c.cashless_sales_count + cab.count)
    return AuditCounters(
        machine_serial=cfg.machine.id,
        machine_model="vendfleet",
        decimal_places=cur.minor_digits,
        currency_numeric=f"1{cur.numeric:03d}",
        currency_alpha=cur.code,
        paid_vends=_tally(paid_value, paid_count, *paid_base),
        test_vends=Tally(0, c.test_vends, 0, c.test_vends - b("test_vends")),
        cash_sales=_tally(c.cash_sales_value, c.cash_sales_count, *cash_base),
        cash_in=CashIn(
            value_reset=c.cash_in - b("cash_in"),
            cashbox_reset=c.coins_to_cash_box - b("coins_to_cash_box"),
            tubes_reset=c.coins_to_tubes - b("coins_to_tubes"),
            bills_reset=c.bills_in - b("bills_in"),
            value_init=c.cash_in,
            cashbox_init=c.coins_to_cash_box,
            tubes_init=c.coins_to_tubes,
            bills_init=c.bills_in,
        ),
        cash_out=CashOut(
            dispensed_reset=c.change_paid + c.refunds_paid - b("change_paid") - b("refunds_paid"),
            manual_reset=c.manual_payout_value - b("manual_payout_value"),
            dispensed_init=c.change_paid + c.refunds_paid,
            manual_init=c.manual_payout_value,
        ),
        tube_fill=TubeFill(c.manual_fill_value - b("manual_fill_value"), c.manual_fill_value),
        tubes=tuple(CoinTube(t.coin_type, t.value.minor, t.count) for t in session.tubes),
        cashless=(
            CashlessDevice(
                slot="DA",
                sales=_tally(*card, *card_base),
            ),
        ),
        selections=tuple(selections),
        reads_with_reset=reads,
        last_read_at=last,
    )  # fmt: skip


def _with_cabinet(
    selections: list[Selection], cabinet: CabinetSales, base: dict[str, Any]
) -> list[Selection]:
    """The cabinet's skus as selections (added to a vend selection of the same code)."""
    by_code = {s.selection: s for s in selections}
    for sku, sold in sorted(cabinet.skus.items()):
        paid = _tally(sold.value, sold.count, *base_of(base, sku))
        old = by_code.get(sku)
        if old is None:
            by_code[sku] = Selection(selection=sku, price=sold.price, name=sold.name, paid=paid)
            continue
        both = Tally(*(
            (x or 0) + (y or 0)
            for x, y in zip(
                (old.paid.value_init, old.paid.count_init, old.paid.value_reset,
                 old.paid.count_reset),
                (paid.value_init, paid.count_init, paid.value_reset, paid.count_reset),
                strict=True,
            )
        ))  # fmt: skip
        by_code[sku] = replace(old, paid=both)
    return list(by_code.values())


def read_dex(
    cfg: MachineConfig, session: VendSession, journal: Journal, *, read_at: datetime, reset: bool
) -> str:
    """The DEX file for this moment; with ``reset`` the interim counters restart from here."""
    raw = journal.get_meta(_SNAPSHOT_KEY)
    state = json.loads(raw) if raw else {}
    last = datetime.fromisoformat(state["read_at"]) if state.get("read_at") else None
    reads = int(state.get("reads_with_reset", 0))
    cabinet = cabinet_sales(journal.db)
    snapshot = state.get("snapshot", {})
    counters = audit_counters(cfg, session, snapshot, reads + reset, last, cabinet=cabinet)
    text = write_dex(
        counters,
        read_at=read_at,
        reset_interim=reset,
        communication_id="VFL0000001",
    )
    if reset:
        journal.set_meta(
            _SNAPSHOT_KEY,
            json.dumps(
                {
                    "snapshot": _snapshot(session, cabinet),
                    "reads_with_reset": reads + 1,
                    "read_at": read_at.isoformat(),
                }
            ),
        )
    return text
