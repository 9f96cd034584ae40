from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fleet.planning.model import CashLevel, PlanningError, PlanogramSlot, Product
from fleet.planning.scoring import (
    Decision,
    MachineOutlook,
    ScoringWeights,
    SlotOutlook,
    select_visits,
)

NOW = datetime(2024, 3, 4, 8, tzinfo=UTC)
COLA = Product("cola", unit_margin=5_000)


def machine(
    mid: str, levels: list[int | None], demand: float = 0.0, **kw: object
) -> MachineOutlook:
    slots = tuple(
        SlotOutlook(PlanogramSlot(mid, f"A{i}", "cola", 10, 10, core=i == 0), COLA, lvl, demand)
        for i, lvl in enumerate(levels)
    )
    return MachineOutlook(mid, slots, **kw)  # type: ignore[arg-type]


def decide(*outlooks: MachineOutlook, **kw: object) -> dict[str, object]:
    return {s.machine_id: s for s in select_visits(list(outlooks), **kw)}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("levels", "demand", "days", "expected", "codes"),
    [
        ([10, 10, 10], 1.0, 2.0, Decision.REJECTED, {"days_since_visit", "below_threshold"}),
        ([0, 10, 10], 1.0, None, Decision.OPTIONAL, {"sold_out", "lost_sales"}),
        ([2, 1, 3], 4.0, None, Decision.OPTIONAL, {"depleted", "lost_sales"}),
        ([10, 10, 10], 0.0, 20.0, Decision.REQUIRED, {"overdue"}),
        ([None, None, None], 0.0, None, Decision.OPTIONAL, {"unknown_stock", "depleted"}),
    ],
)
def test_decision_table(levels, demand, days, expected, codes) -> None:  # type: ignore[no-untyped-def]
    score = decide(machine("m", levels, demand, days_since_visit=days))["m"]
    assert score.decision is expected  # type: ignore[attr-defined]
    assert codes <= {r.code for r in score.reasons}  # type: ignore[attr-defined]


def test_core_sell_out_weighs_more_and_prize_is_lost_margin() -> None:
    core = decide(machine("c", [0, 10], demand=3.0))["c"]
    other = decide(machine("o", [10, 0], demand=3.0))["o"]
    assert core.score > other.score  # type: ignore[attr-defined]
    assert core.lost_margin == 3 * 5_000  # type: ignore[attr-defined]
    assert core.prize == round(core.score * 1_000)  # type: ignore[attr-defined]
    assert core.prize >= core.lost_margin  # type: ignore[attr-defined]
    assert core.sold_out == ("A0",)  # type: ignore[attr-defined]


def test_must_visit_and_skip_lists_override_the_score() -> None:
    quiet = machine("quiet", [10, 10])
    empty = machine("empty", [0, 0], demand=5.0)
    got = decide(quiet, empty, must_visit={"quiet"}, skip={"empty"})
    assert got["quiet"].decision is Decision.REQUIRED  # type: ignore[attr-defined]
    assert got["quiet"].reasons[0].code == "must_visit"  # type: ignore[attr-defined]
    assert got["empty"].decision is Decision.REJECTED  # type: ignore[attr-defined]
    assert got["empty"].reasons[0].code == "skip_list"  # type: ignore[attr-defined]
    with pytest.raises(PlanningError, match="both"):
        select_visits([quiet], must_visit={"quiet"}, skip={"quiet"})


@pytest.mark.parametrize(
    ("cash", "code"),
    [
        (CashLevel("m", NOW, cash_box_fill=0.9), "cash_box_full"),
        (CashLevel("m", NOW, bill_stacker_fill=0.95), "bill_stacker_full"),
        (CashLevel("m", NOW, tubes_low=True), "tubes_low"),
    ],
)
def test_cash_forces_a_collection_visit(cash: CashLevel, code: str) -> None:
    score = decide(machine("m", [10, 10], cash=cash))["m"]
    assert score.decision is Decision.REQUIRED  # type: ignore[attr-defined]
    assert code in {r.code for r in score.reasons}  # type: ignore[attr-defined]


def test_cash_below_threshold_does_not_force() -> None:
    score = decide(machine("m", [10, 10], cash=CashLevel("m", NOW, cash_box_fill=0.5)))["m"]
    assert score.decision is Decision.REJECTED  # type: ignore[attr-defined]


def test_per_machine_weights_override_fleet_weights() -> None:
    strict = ScoringWeights(min_score=1_000)
    got = decide(
        machine("a", [0, 0], demand=2.0),
        machine("b", [0, 0], demand=2.0),
        overrides={"b": strict},
    )
    assert got["a"].decision is Decision.OPTIONAL  # type: ignore[attr-defined]
    assert got["b"].decision is Decision.REJECTED  # type: ignore[attr-defined]


def test_order_is_required_then_by_score() -> None:
    out = select_visits(
        [
            machine("low", [10, 10]),
            machine("high", [0, 0], demand=9.0),
            machine("forced", [10, 10], days_since_visit=30.0),
        ]
    )
    assert [s.machine_id for s in out] == ["forced", "high", "low"]
