"""Which payment means the machine offers right now: the exact-change rule applied to a session."""

from __future__ import annotations

from collections.abc import Iterable

from protocols.change import Tube
from protocols.exact_change import decide_exact_change
from protocols.money import Money
from protocols.vend.outputs import SetAcceptance

_NOTHING: frozenset[int] = frozenset()


def decide_acceptance(
    *,
    tubes: tuple[Tube, ...],
    coins: Iterable[tuple[int, Money]],
    bills: Iterable[tuple[int, Money]],
    prices: list[Money],
    credit: Money,
    vending: bool,
    card_session: bool,
    escrow_held: bool,
    card_readers: bool,
) -> SetAcceptance:
    """Acceptors are off while a vend or payout runs (MDB 6.2) and during a card session;
    with cash credit the readers are off so one customer never pays twice; otherwise each
    coin and bill type is offered only if every change it could lead to can be paid."""
    if vending:
        return SetAcceptance(_NOTHING, _NOTHING, cards=False, exact_change=False)
    if card_session:
        return SetAcceptance(_NOTHING, _NOTHING, cards=True, exact_change=False)
    if not prices:  # nothing to sell: take no money
        return SetAcceptance(_NOTHING, _NOTHING, cards=False, exact_change=False)
    coin_map, bill_map = dict(coins), dict(bills)
    decision = decide_exact_change(
        tubes,
        prices,
        coin_map,
        bill_map,
        credit,
        routed_to_tubes=[t.coin_type for t in tubes],
    )
    return SetAcceptance(
        coins=decision.accept_coins,
        bills=_NOTHING if escrow_held else decision.accept_bills,
        cards=card_readers and not credit,
        exact_change=decision.exact_change_only,
    )
