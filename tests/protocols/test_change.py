"""Change making: exact against brute force, best effort, DISPENSE splitting, reconciliation."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.change import (
    ChangeError,
    ChangePlan,
    CoinCount,
    Tube,
    alternative_payout_units,
    plan_best_effort,
    plan_change,
    reconcile_payout,
    reconcile_reported_payout,
    split_dispense_commands,
    tubes_from,
)
from protocols.money import CURRENCIES, MdbScaling, Money, MoneyError


def vnd(minor: int) -> Money:
    return Money(minor, "VND")


def eur(cents: int) -> Money:
    return Money(cents, "EUR")


def make_tubes(spec: list[tuple[int, int]], currency: str = "VND") -> list[Tube]:
    """Tubes of coin types 0, 1, 2, ... from (value, count) pairs."""
    return [Tube(i, Money(v, currency), c) for i, (v, c) in enumerate(spec)]


def fewest_coins_by_enumeration(tubes: list[Tube]) -> dict[int, int]:
    """Every payable sum → fewest coins, by trying every count vector."""
    best: dict[int, int] = {}
    for counts in itertools.product(*(range(t.count + 1) for t in tubes)):
        total = sum(c * t.value.minor for c, t in zip(counts, tubes, strict=True))
        coins = sum(counts)
        if total not in best or coins < best[total]:
            best[total] = coins
    return best


def fewest_coins_by_coin_dp(tubes: list[Tube], limit: int) -> dict[int, int]:
    """Slow reference: a 0/1 knapsack over every single coin (no binary splitting)."""
    best = {0: 0}
    for tube in tubes:
        for _ in range(min(tube.count, limit // tube.value.minor)):
            for total, coins in sorted(best.items(), reverse=True):
                new = total + tube.value.minor
                if new <= limit and (new not in best or coins + 1 < best[new]):
                    best[new] = coins + 1
    return best


def check_plan_shape(plan: ChangePlan, amount: Money, tubes: list[Tube]) -> None:
    """Invariants every plan must keep, whatever the coin set."""
    by_type = {t.coin_type: t for t in tubes}
    assert plan.paid + plan.unpaid == amount
    assert plan.paid.minor <= amount.minor
    assert plan.unpaid.minor >= 0
    assert [c.coin_type for c in plan.coins] == sorted({c.coin_type for c in plan.coins})
    paid = 0
    for coin_type, quantity in plan.coins:
        assert 0 < quantity <= by_type[coin_type].count
        paid += quantity * by_type[coin_type].value.minor
    assert paid == plan.paid.minor
    assert plan.coin_count == sum(q for _, q in plan.coins)


# -- exhaustive over small coin sets -----------------------------------------------------

SMALL_SETS = [
    values
    for size in (1, 2, 3)
    for values in itertools.combinations_with_replacement(range(1, 7), size)
]


@pytest.mark.parametrize("values", SMALL_SETS, ids=lambda v: "-".join(map(str, v)))
def test_every_small_coin_set_and_amount_agrees_with_enumeration(values: tuple[int, ...]) -> None:
    for counts in itertools.product(range(4), repeat=len(values)):
        tubes = make_tubes(list(zip(values, counts, strict=True)))
        fewest = fewest_coins_by_enumeration(tubes)
        total = sum(v * c for v, c in zip(values, counts, strict=True))
        for owed in range(total + 2):
            amount = vnd(owed)
            plan = plan_change(amount, tubes)
            if owed in fewest:
                assert plan is not None, (tubes, owed)
                check_plan_shape(plan, amount, tubes)
                assert plan.exact
                assert plan.coin_count == fewest[owed]
            else:
                assert plan is None, (tubes, owed)
            best = plan_best_effort(amount, tubes)
            check_plan_shape(best, amount, tubes)
            most = max(s for s in fewest if s <= owed)
            assert best.paid == vnd(most)
            assert best.coin_count == fewest[most]


# -- larger random sets against a slow reference -------------------------------------------

tube_specs = st.lists(
    st.tuples(st.integers(1, 40), st.integers(0, 25)), min_size=0, max_size=8
).map(make_tubes)


@settings(max_examples=120, deadline=None)
@given(tubes=tube_specs, owed=st.integers(0, 300))
def test_random_sets_match_the_slow_reference(tubes: list[Tube], owed: int) -> None:
    fewest = fewest_coins_by_coin_dp(tubes, owed)
    amount = vnd(owed)
    plan = plan_change(amount, tubes)
    if owed in fewest:
        assert plan is not None
        check_plan_shape(plan, amount, tubes)
        assert plan.coin_count == fewest[owed]
    else:
        assert plan is None
    best = plan_best_effort(amount, tubes)
    check_plan_shape(best, amount, tubes)
    assert best.paid.minor == max(fewest)
    assert best.coin_count == fewest[max(fewest)]


@settings(max_examples=80, deadline=None)
@given(tubes=tube_specs, owed=st.integers(0, 300), seed=st.integers(0, 2**32))
def test_the_plan_does_not_depend_on_tube_order(tubes: list[Tube], owed: int, seed: int) -> None:
    shuffled = list(tubes)
    random.Random(seed).shuffle(shuffled)
    assert plan_best_effort(vnd(owed), shuffled) == plan_best_effort(vnd(owed), tubes)


def test_realistic_sizes_stay_exact() -> None:
    # 16 types, full tubes: amounts of a few hundred units still plan exactly.
    tubes = [Tube(t, vnd(v), 200) for t, v in enumerate([1, 2, 5, 10, 20, 50] * 2 + [3, 7, 9, 11])]
    plan = plan_change(vnd(487), tubes)
    assert plan is not None
    check_plan_shape(plan, vnd(487), tubes)
    assert plan.coin_count == fewest_coins_by_coin_dp(tubes, 487)[487]


# -- worked examples ---------------------------------------------------------------------


def test_non_canonical_set_pays_six_as_two_threes() -> None:
    tubes = make_tubes([(1, 10), (3, 10), (4, 10)])
    plan = plan_change(vnd(6), tubes)
    assert plan is not None
    assert plan.coins == (CoinCount(1, 2),)
    assert plan.paid == vnd(6)


def test_vnd_tubes_pay_large_coins_first_when_that_is_fewest() -> None:
    tubes = make_tubes([(200, 10), (500, 10), (1000, 10), (2000, 10), (5000, 10)])
    plan = plan_change(vnd(8_000), tubes)
    assert plan is not None
    assert plan.counts() == {2: 1, 3: 1, 4: 1}


def test_vnd_without_500_pays_700_short_and_reports_the_iou() -> None:
    tubes = make_tubes([(200, 3), (500, 0), (1000, 4)])
    assert plan_change(vnd(700), tubes) is None
    best = plan_best_effort(vnd(700), tubes)
    assert best.paid == vnd(600)
    assert best.unpaid == vnd(100)
    assert best.counts() == {0: 3}
    assert not best.exact


def test_vnd_amount_off_the_coin_grid_is_never_exact() -> None:
    tubes = make_tubes([(200, 50), (500, 50)])
    assert plan_change(vnd(100), tubes) is None
    assert plan_best_effort(vnd(1_150), tubes).paid == vnd(1_100)


def test_eur_without_ten_cents_uses_twenty_and_two_fives() -> None:
    tubes = make_tubes([(5, 4), (10, 0), (20, 3), (50, 2), (100, 1), (200, 0)], "EUR")
    plan = plan_change(eur(30), tubes)
    assert plan is not None
    assert plan.counts() == {0: 2, 2: 1}
    assert plan.paid == eur(30)


def test_amount_above_everything_in_the_tubes_pays_all_of_it() -> None:
    tubes = make_tubes([(5, 2), (20, 1)], "EUR")
    best = plan_best_effort(eur(100), tubes)
    assert best.counts() == {0: 2, 1: 1}
    assert best.unpaid == eur(70)


def test_empty_tubes_and_zero_amount() -> None:
    assert plan_change(vnd(0), []) == ChangePlan((), vnd(0), vnd(0))
    assert plan_change(vnd(500), []) is None
    assert plan_best_effort(vnd(500), make_tubes([(500, 0)])).unpaid == vnd(500)


def test_equal_coin_counts_lean_on_the_fuller_tubes() -> None:
    # 6 = 3+3 or 2+4: two coins either way; the fill levels decide.
    threes_full = make_tubes([(2, 1), (3, 10), (4, 1)])
    twos_and_fours_full = make_tubes([(2, 10), (3, 2), (4, 9)])
    assert plan_change(vnd(6), threes_full) == ChangePlan((CoinCount(1, 2),), vnd(6), vnd(0))
    plan = plan_change(vnd(6), twos_and_fours_full)
    assert plan is not None
    assert plan.counts() == {0: 1, 2: 1}


def test_repeated_value_takes_the_fuller_of_two_tubes() -> None:
    tubes = [Tube(0, vnd(500), 3), Tube(7, vnd(500), 12)]
    plan = plan_change(vnd(1_000), tubes)
    assert plan is not None
    assert plan.coins == (CoinCount(7, 2),)


def test_repeated_value_spills_into_the_second_tube() -> None:
    tubes = [Tube(0, vnd(500), 3), Tube(7, vnd(500), 2)]
    plan = plan_change(vnd(2_500), tubes)
    assert plan is not None
    assert plan.counts() == {0: 3, 7: 2}


# -- bad input -----------------------------------------------------------------------------


def test_currency_mismatch_raises_money_error() -> None:
    tubes = make_tubes([(50, 4)], "EUR")
    with pytest.raises(MoneyError):
        plan_change(vnd(100), tubes)
    with pytest.raises(MoneyError):
        plan_best_effort(vnd(100), tubes)


@pytest.mark.parametrize(
    ("coin_type", "value", "count"),
    [(16, vnd(100), 1), (-1, vnd(100), 1), (0, vnd(0), 1), (0, vnd(-5), 1), (0, vnd(100), -1),
     (0, vnd(100), True), (0, 100, 1), ("1", vnd(100), 1)],
)  # fmt: skip
def test_bad_tubes_are_refused_by_name(coin_type: object, value: object, count: object) -> None:
    with pytest.raises(ChangeError):
        Tube(coin_type, value, count)  # type: ignore[arg-type]


def test_bad_plan_requests_raise_change_error() -> None:
    with pytest.raises(ChangeError, match="negative"):
        plan_change(vnd(-1), [])
    with pytest.raises(ChangeError, match="two tubes"):
        plan_change(vnd(1), [Tube(3, vnd(1), 1), Tube(3, vnd(2), 1)])
    with pytest.raises(ChangeError, match="Tube"):
        plan_change(vnd(1), [(3, vnd(1), 1)])  # type: ignore[list-item]
    with pytest.raises(ChangeError, match="Money"):
        plan_change(100, [])  # type: ignore[arg-type]


def test_plans_must_be_sorted_and_positive() -> None:
    with pytest.raises(ChangeError):
        ChangePlan((CoinCount(2, 1), CoinCount(1, 1)), vnd(2), vnd(0))
    with pytest.raises(ChangeError):
        ChangePlan((CoinCount(2, 0),), vnd(0), vnd(0))
    with pytest.raises(MoneyError):
        ChangePlan((), vnd(0), eur(0))


def test_tubes_from_setup_and_tube_status() -> None:
    values = {0: vnd(200), 1: vnd(500), 2: vnd(0)}
    tubes = tubes_from(values, {0: 4, 1: 0, 2: 0, 3: 0})
    assert tubes == (Tube(0, vnd(200), 4),)
    with pytest.raises(ChangeError, match="no value"):
        tubes_from(values, {5: 2})
    with pytest.raises(ChangeError, match="no value"):
        tubes_from(values, {2: 1})


# -- Level 2 DISPENSE and Level 3 ALTERNATIVE PAYOUT ------------------------------------


def test_dispense_commands_carry_at_most_fifteen_coins() -> None:
    plan = ChangePlan((CoinCount(1, 3), CoinCount(4, 40)), vnd(0), vnd(0))
    assert split_dispense_commands(plan) == ((1, 3), (4, 15), (4, 15), (4, 10))


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.integers(0, 15), st.integers(1, 200), max_size=16))
def test_dispense_commands_add_up_to_the_plan(counts: dict[int, int]) -> None:
    plan = ChangePlan(tuple(CoinCount(t, counts[t]) for t in sorted(counts)), vnd(0), vnd(0))
    commands = split_dispense_commands(plan)
    assert all(1 <= q <= 15 for _, q in commands)
    totals: dict[int, int] = {}
    for coin_type, quantity in commands:
        totals[coin_type] = totals.get(coin_type, 0) + quantity
    assert totals == counts


VND_SCALING = MdbScaling(100, 0, CURRENCIES["VND"])


def test_alternative_payout_fits_one_byte_per_request() -> None:
    values = {0: vnd(1_000), 1: vnd(5_000)}
    small = plan_change(vnd(8_000), [Tube(0, vnd(1_000), 5), Tube(1, vnd(5_000), 5)])
    assert small is not None
    assert alternative_payout_units(small, values, VND_SCALING) == (80,)
    big = ChangePlan((CoinCount(0, 3), CoinCount(1, 40)), vnd(203_000), vnd(0))
    requests = alternative_payout_units(big, values, VND_SCALING)
    assert sum(requests) == 2_030
    assert all(r <= 255 for r in requests)
    assert all(r % 10 == 0 for r in requests)  # whole coins: 1,000 VND = 10 units


def test_alternative_payout_refuses_a_coin_wider_than_the_byte() -> None:
    plan = ChangePlan((CoinCount(0, 1),), vnd(50_000), vnd(0))
    with pytest.raises(ChangeError, match="over 255"):
        alternative_payout_units(plan, {0: vnd(50_000)}, VND_SCALING)


# -- reconciliation ------------------------------------------------------------------------

VALUES = {0: vnd(500), 1: vnd(1_000), 2: vnd(5_000)}


def test_reconcile_a_complete_payout() -> None:
    plan = ChangePlan((CoinCount(0, 1), CoinCount(1, 2)), vnd(2_500), vnd(0))
    result = reconcile_payout(plan, {0: 5, 1: 5, 2: 1}, {0: 4, 1: 3, 2: 1}, VALUES)
    assert result.complete
    assert result.paid == vnd(2_500)
    assert result.paid_coins == (CoinCount(0, 1), CoinCount(1, 2))


def test_reconcile_a_tube_that_ran_dry_reports_the_shortfall() -> None:
    plan = ChangePlan((CoinCount(1, 3),), vnd(3_000), vnd(0))
    result = reconcile_payout(plan, {0: 2, 1: 1}, {0: 2, 1: 0}, VALUES)
    assert result.paid == vnd(1_000)
    assert result.shortfall == vnd(2_000)
    assert not result.complete


def test_reconcile_ignores_a_tube_that_grew_and_counts_excess() -> None:
    result = reconcile_payout(vnd(1_000), {0: 2, 1: 3, 2: 1}, {0: 9, 1: 2, 2: 0}, VALUES)
    assert result.paid_coins == (CoinCount(1, 1), CoinCount(2, 1))
    assert result.paid == vnd(6_000)
    assert result.excess == vnd(5_000)
    assert result.shortfall == vnd(0)


def test_reconcile_a_level3_report() -> None:
    result = reconcile_reported_payout(vnd(7_000), {2: 1, 1: 1, 0: 0}, VALUES)
    assert result.paid == vnd(6_000)
    assert result.shortfall == vnd(1_000)


def test_reconcile_bad_input() -> None:
    with pytest.raises(ChangeError, match="no count after"):
        reconcile_payout(vnd(0), {0: 1}, {}, VALUES)
    with pytest.raises(ChangeError, match="no value"):
        reconcile_payout(vnd(0), {7: 1}, {7: 0}, VALUES)
    with pytest.raises(ChangeError):
        reconcile_payout(vnd(0), {0: -1}, {0: 0}, VALUES)
    with pytest.raises(MoneyError):
        reconcile_payout(eur(100), {0: 1}, {0: 0}, VALUES)
    with pytest.raises(ChangeError):
        reconcile_payout(100, {}, {}, VALUES)  # type: ignore[arg-type]
