"""Which machines to visit on the planned day, and why (or why not).

Each machine is scored on thresholds, the way route accounting systems do it: selections
that will be sold out when the van could arrive, how much of par is missing, the margin
lost if the visit waits until the next possible day, days since the last visit, and cash
(a full coin box or bill stacker, or empty change tubes, force a collection). Weights
are per fleet with per-machine overrides; a must-visit list forces a visit and a skip
list forbids one. Every decision keeps its reasons.

The router's prize for an optional visit is the score valued at `margin_per_point`: the
lost-sales part is exactly the expected lost margin, and the other thresholds (sold-out
selections, depletion, days since the last visit) are priced at the same rate, so a
machine chosen for being depleted is not dropped for having no forecast loss today.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from fleet.planning.model import CashLevel, PlanningError, PlanogramSlot, Product, Reason


@dataclass(frozen=True, slots=True)
class ScoringWeights:
    sold_out_points: float = 10.0  # per selection empty at the planned arrival
    core_sold_out_points: float = 25.0  # per core selection empty at arrival
    depletion_threshold: float = 0.4  # share of par missing that starts to count
    depletion_points: float = 50.0  # points for a machine 100 % depleted
    margin_per_point: int = 1_000  # lost margin (minor units) worth one point
    max_days_between_visits: float = 14.0  # beyond this the visit is forced
    days_since_visit_points: float = 1.0  # per day since the last visit
    cash_box_full: float = 0.85  # coin box share that forces a collection
    bill_stacker_full: float = 0.85
    tubes_low_forces: bool = True
    unknown_stock_points: float = 15.0  # per selection with no stock data at all
    min_score: float = 30.0  # optional visits below this are not planned
    # "May-go": a machine below min_score today that will be chosen within this many
    # days is offered to the router with `may_go_share` of that later score as its
    # prize, so it is served now only when a van passes close by (0 days: off).
    may_go_days: float = 2.0
    may_go_share: float = 0.5

    def __post_init__(self) -> None:
        if self.margin_per_point <= 0:
            raise PlanningError("scoring: margin_per_point must be positive")
        if not 0.0 <= self.depletion_threshold < 1.0:
            raise PlanningError("scoring: depletion_threshold must be in [0, 1)")
        if self.may_go_days < 0 or not 0.0 <= self.may_go_share <= 1.0:
            raise PlanningError("scoring: may_go_days must be >= 0 and may_go_share in [0, 1]")


@dataclass(frozen=True, slots=True)
class SlotOutlook:
    """One selection as seen for the planned day."""

    slot: PlanogramSlot
    product: Product
    on_hand_at_visit: int | None  # forecast units at the planned arrival
    demand_until_next: float  # units asked for from arrival to the next possible visit
    days_to_empty: float | None = None  # from the planned arrival


@dataclass(frozen=True, slots=True)
class MachineOutlook:
    machine_id: str
    slots: tuple[SlotOutlook, ...]
    days_since_visit: float | None = None
    cash: CashLevel | None = None


class Decision(StrEnum):
    REQUIRED = "required"  # must be routed (must-visit list or a forcing threshold)
    OPTIONAL = "optional"  # routed if it pays: prize = margin at stake
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class MachineScore:
    machine_id: str
    score: float
    decision: Decision
    reasons: tuple[Reason, ...]
    prize: int = 0  # minor units the router weighs against the detour (score x point value)
    lost_margin: int = 0  # minor units: expected margin lost if the visit waits
    lost_units: float = 0.0
    depletion: float = 0.0  # share of par missing at arrival (0..1)
    sold_out: tuple[str, ...] = field(default_factory=tuple)

    @property
    def chosen(self) -> bool:
        return self.decision is not Decision.REJECTED

    def explain(self) -> str:
        head = f"{self.machine_id}: {self.decision.value}, score {self.score:.0f}"
        return head + "".join(f"\n  - {r}" for r in self.reasons)


def score_machine(outlook: MachineOutlook, weights: ScoringWeights) -> MachineScore:
    """Score one machine without the operator's lists (see select_visits)."""
    reasons: list[Reason] = []
    forced = False
    sold_out: list[str] = []
    unknown = 0
    missing = 0
    par_total = 0
    lost_units = 0.0
    lost_margin = 0.0
    for so in outlook.slots:
        par_total += so.slot.par
        if so.on_hand_at_visit is None:
            unknown += 1
            missing += so.slot.par
            continue
        on_hand = so.on_hand_at_visit
        missing += max(0, so.slot.par - on_hand)
        if on_hand <= 0:
            sold_out.append(so.slot.selection)
            pts = weights.core_sold_out_points if so.slot.core else weights.sold_out_points
            kind = "core selection" if so.slot.core else "selection"
            reasons.append(
                Reason("sold_out", f"{kind} {so.slot.selection} ({so.product.sku}) empty", pts)
            )
        lost = max(0.0, so.demand_until_next - on_hand)
        lost_units += lost
        lost_margin += lost * so.product.unit_margin
    if unknown:
        reasons.append(
            Reason(
                "unknown_stock",
                f"{unknown} selection(s) without stock data",
                unknown * weights.unknown_stock_points,
            )
        )
    depletion = missing / par_total if par_total else 0.0
    if depletion > weights.depletion_threshold:
        pts = weights.depletion_points * depletion
        reasons.append(Reason("depleted", f"{depletion:.0%} of par missing at arrival", pts))
    if lost_margin > 0:
        reasons.append(
            Reason(
                "lost_sales",
                f"{lost_units:.1f} units ({lost_margin:,.0f} margin) lost if the visit waits",
                lost_margin / weights.margin_per_point,
            )
        )
    days = outlook.days_since_visit
    if days is not None:
        if days >= weights.max_days_between_visits:
            forced = True
            reasons.append(
                Reason(
                    "overdue",
                    f"{days:.0f} days since the last visit "
                    f"(limit {weights.max_days_between_visits:g})",
                )
            )
        elif weights.days_since_visit_points > 0 and days >= 1:
            reasons.append(
                Reason(
                    "days_since_visit",
                    f"{days:.0f} days since the last visit",
                    days * weights.days_since_visit_points,
                )
            )
    forced |= _cash_reasons(outlook.cash, weights, reasons)
    score = sum(r.points for r in reasons)
    if forced:
        decision = Decision.REQUIRED
    elif score >= weights.min_score:
        decision = Decision.OPTIONAL
    else:
        decision = Decision.REJECTED
        reasons.append(Reason("below_threshold", f"score {score:.0f} < {weights.min_score:g}"))
    return MachineScore(
        machine_id=outlook.machine_id,
        score=score,
        decision=decision,
        reasons=tuple(reasons),
        prize=round(score * weights.margin_per_point),
        lost_margin=round(lost_margin),
        lost_units=lost_units,
        depletion=depletion,
        sold_out=tuple(sold_out),
    )


def _cash_reasons(cash: CashLevel | None, weights: ScoringWeights, reasons: list[Reason]) -> bool:
    if cash is None:
        return False
    forced = False
    if cash.cash_box_fill is not None and cash.cash_box_fill >= weights.cash_box_full:
        forced = True
        reasons.append(Reason("cash_box_full", f"coin box {cash.cash_box_fill:.0%} full"))
    if cash.bill_stacker_fill is not None and cash.bill_stacker_fill >= weights.bill_stacker_full:
        forced = True
        reasons.append(
            Reason("bill_stacker_full", f"bill stacker {cash.bill_stacker_fill:.0%} full")
        )
    if cash.tubes_low and weights.tubes_low_forces:
        forced = True
        reasons.append(Reason("tubes_low", "change tubes low: cannot make change"))
    return forced


def select_visits(
    outlooks: Sequence[MachineOutlook],
    weights: ScoringWeights | None = None,
    overrides: Mapping[str, ScoringWeights] | None = None,
    must_visit: Collection[str] = (),
    skip: Collection[str] = (),
) -> list[MachineScore]:
    """Score every machine and decide; best first (required, then by score)."""
    base = weights or ScoringWeights()
    per_machine = overrides or {}
    both = set(must_visit) & set(skip)
    if both:
        raise PlanningError(f"machine(s) on both must-visit and skip lists: {sorted(both)}")
    out: list[MachineScore] = []
    for outlook in outlooks:
        result = score_machine(outlook, per_machine.get(outlook.machine_id, base))
        mid = outlook.machine_id
        if mid in skip:
            result = _override(result, Decision.REJECTED, Reason("skip_list", "on the skip list"))
        elif mid in must_visit:
            result = _override(
                result, Decision.REQUIRED, Reason("must_visit", "on the must-visit list")
            )
        out.append(result)
    order = {Decision.REQUIRED: 0, Decision.OPTIONAL: 1, Decision.REJECTED: 2}
    out.sort(key=lambda s: (order[s.decision], -s.score, s.machine_id))
    return out


def pull_forward(
    today: Sequence[MachineScore],
    later: Sequence[MachineScore],
    weights: ScoringWeights | None = None,
    overrides: Mapping[str, ScoringWeights] | None = None,
) -> list[MachineScore]:
    """Offer machines rejected today but chosen in `later` (scored `may_go_days` ahead).

    Visiting such a machine on a route that passes by saves a dedicated trip soon; its
    prize is only a share of the later score, so the router takes it when the detour is
    short and leaves it for its own day otherwise.
    """
    base = weights or ScoringWeights()
    per_machine = overrides or {}
    ahead = {s.machine_id: s for s in later}
    out: list[MachineScore] = []
    for result in today:
        w = per_machine.get(result.machine_id, base)
        soon = ahead.get(result.machine_id)
        codes = {r.code for r in result.reasons}
        if (
            result.decision is not Decision.REJECTED
            or soon is None
            or not soon.chosen
            or "skip_list" in codes
            or w.may_go_days <= 0
            or w.may_go_share <= 0
        ):
            out.append(result)
            continue
        # A forced visit (overdue, cash) carries no points of its own: count it as due.
        pts = max(soon.score, w.min_score) * w.may_go_share
        why = Reason(
            "due_soon",
            f"due within {w.may_go_days:g} days (score {soon.score:.0f} then): "
            "visited now if a van passes close by",
            pts,
        )
        kept = tuple(r for r in result.reasons if r.code != "below_threshold")
        score = result.score + pts
        out.append(
            replace(
                result,
                score=score,
                decision=Decision.OPTIONAL,
                reasons=(why, *kept),
                prize=round(score * w.margin_per_point),
            )
        )
    order = {Decision.REQUIRED: 0, Decision.OPTIONAL: 1, Decision.REJECTED: 2}
    out.sort(key=lambda s: (order[s.decision], -s.score, s.machine_id))
    return out


def _override(result: MachineScore, decision: Decision, why: Reason) -> MachineScore:
    kept = tuple(r for r in result.reasons if r.code != "below_threshold")
    return MachineScore(
        machine_id=result.machine_id,
        score=result.score,
        decision=decision,
        reasons=(why, *kept),
        prize=result.prize,
        lost_margin=result.lost_margin,
        lost_units=result.lost_units,
        depletion=result.depletion,
        sold_out=result.sold_out,
    )
