"""Exact-change policy: table tests for real-looking machines and a property against plan_change."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.change import ChangeError, Tube, plan_change
from protocols.exact_change import ExactChangeDecision, PayableAmounts, decide_exact_change
from protocols.money import Money, MoneyError


def vnd(minor: int) -> Money:
    return Money(minor, "VND")


VND_COINS = {0: vnd(200), 1: vnd(500), 2: vnd(1_000), 3: vnd(2_000), 4: vnd(5_000)}
VND_BILLS = {0: vnd(10_000), 1: vnd(20_000), 2: vnd(50_000)}


def vnd_tubes(*counts: int) -> list[Tube]:
    return [Tube(t, VND_COINS[t], c) for t, c in enumerate(counts)]


# -- representative machines ----------------------------------------------------------------


def test_nearly_empty_tubes_refuse_the_20000_bill_and_take_the_10000() -> None:
    decision = decide_exact_change(
        vnd_tubes(0, 0, 2, 1, 0),
        prices=[vnd(12_000), vnd(15_000)],
        coins=VND_COINS,
        bills=VND_BILLS,
        credit=vnd(0),
        routed_to_tubes=VND_COINS,
    )
    assert decision.accept_bills == {0}
    assert decision.bill_mask == 0b001
    assert decision.exact_change_only
    refused = {r.type: r for r in decision.refusals if r.kind == "bill"}
    assert set(refused) == {1, 2}
    assert refused[1].change == vnd(8_000)
    assert refused[1].spent == vnd(12_000)
    assert "20,000 VND bill" in refused[1].text
    assert "8,000 VND" in refused[1].text
    # Every coin can be handed back (it lands in its own tube) and buys nothing yet.
    assert decision.accept_coins == set(VND_COINS)


def test_well_stocked_tubes_accept_everything() -> None:
    decision = decide_exact_change(
        vnd_tubes(20, 20, 20, 20, 20),
        prices=[vnd(12_000), vnd(15_000), vnd(8_500)],
        coins=VND_COINS,
        bills=VND_BILLS,
        credit=vnd(0),
        routed_to_tubes=VND_COINS,
    )
    assert decision == ExactChangeDecision(
        exact_change_only=False,
        accept_coins=frozenset(VND_COINS),
        accept_bills=frozenset(VND_BILLS),
        refusals=(),
    )
    assert decision.coin_mask == 0b11111


def test_a_coin_that_reaches_its_tube_pays_its_own_refund() -> None:
    common = {"prices": [vnd(10_000)], "coins": {1: vnd(500)}, "bills": {}, "credit": vnd(0)}
    to_tube = decide_exact_change(vnd_tubes(0, 0), routed_to_tubes={1}, **common)  # type: ignore[arg-type]
    to_cash_box = decide_exact_change(vnd_tubes(0, 0), **common)  # type: ignore[arg-type]
    assert to_tube.accept_coins == {1}
    assert to_cash_box.accept_coins == set()
    (refusal,) = to_cash_box.refusals
    assert refusal.spent is None
    assert refusal.change == vnd(500)
    assert "refund of 500 VND" in refusal.text


def test_credit_already_held_counts_towards_the_price() -> None:
    # 10,000 held; a 5,000 coin makes 15,000 for a 12,000 item: 3,000 change.
    def decide(thousands: int) -> ExactChangeDecision:
        return decide_exact_change(
            vnd_tubes(0, 0, thousands),
            prices=[vnd(12_000)],
            coins={4: vnd(5_000)},
            bills={},
            credit=vnd(10_000),
            refund_on_cancel=False,
        )

    assert decide(3).accept_coins == {4}
    assert decide(2).accept_coins == set()
    assert decide(2).refusals[0].change == vnd(3_000)


def test_a_stacked_bill_must_be_refundable_in_coins() -> None:
    def decide(escrow: bool) -> ExactChangeDecision:
        return decide_exact_change(
            vnd_tubes(0, 0, 5),
            prices=[vnd(12_000)],
            coins={},
            bills={0: vnd(10_000)},
            credit=vnd(0),
            bill_escrow=escrow,
        )

    assert decide(escrow=True).accept_bills == {0}
    stacked = decide(escrow=False)
    assert stacked.accept_bills == set()
    assert stacked.refusals[0].spent is None
    assert stacked.refusals[0].change == vnd(10_000)


def test_multi_vend_checks_every_basket_the_credit_can_buy() -> None:
    # 10,000 for 3,000 items: one item leaves 7,000 (= 5,000 + 2,000), two leave 4,000.
    def decide(multi: bool) -> ExactChangeDecision:
        return decide_exact_change(
            [Tube(3, vnd(2_000), 1), Tube(4, vnd(5_000), 1)],
            prices=[vnd(3_000)],
            coins={},
            bills={0: vnd(10_000)},
            credit=vnd(0),
            multi_vend=multi,
        )

    assert decide(multi=False).accept_bills == {0}
    refused = decide(multi=True)
    assert refused.accept_bills == set()
    assert refused.refusals[0].change == vnd(4_000)
    assert refused.refusals[0].spent == vnd(6_000)


def test_eur_machine_without_small_coins() -> None:
    def eur(cents: int) -> Money:
        return Money(cents, "EUR")

    decision = decide_exact_change(
        [Tube(0, eur(10), 0), Tube(1, eur(20), 0), Tube(2, eur(50), 3), Tube(3, eur(100), 2)],
        prices=[eur(150)],
        coins={2: eur(50), 3: eur(100), 4: eur(200)},
        bills={0: eur(500)},
        credit=eur(0),
        routed_to_tubes={2, 3},
        refund_on_cancel=False,
    )
    # 2 € for 1.50 € leaves 0.50 €: fine; a 5 € note leaves 3.50 €: two 1 € and three 0.50 € coins.
    assert decision.accept_coins == {2, 3, 4}
    assert decision.accept_bills == {0}
    assert not decision.exact_change_only


def test_bad_input_raises_our_errors() -> None:
    tubes = vnd_tubes(1, 1)
    with pytest.raises(MoneyError):
        decide_exact_change(tubes, [Money(100, "EUR")], {}, {}, vnd(0))
    with pytest.raises(MoneyError):
        decide_exact_change(tubes, [], {0: Money(5, "EUR")}, {}, vnd(0))
    with pytest.raises(MoneyError):
        decide_exact_change([Tube(0, Money(5, "EUR"), 1)], [], {}, {}, vnd(0))
    with pytest.raises(ChangeError, match="bill type"):
        decide_exact_change(tubes, [], {}, {16: vnd(10_000)}, vnd(0))
    with pytest.raises(ChangeError, match="positive"):
        decide_exact_change(tubes, [], {0: vnd(0)}, {}, vnd(0))
    with pytest.raises(ChangeError, match="price"):
        decide_exact_change(tubes, [vnd(-1)], {}, {}, vnd(0))
    with pytest.raises(ChangeError, match="credit"):
        decide_exact_change(tubes, [], {}, {}, vnd(-1))


# -- payable amounts ------------------------------------------------------------------------

small_tubes = st.lists(
    st.tuples(st.sampled_from([1, 2, 3, 4, 5, 10, 20, 50]), st.integers(0, 6)), max_size=6
).map(lambda spec: [Tube(t, vnd(v), c) for t, (v, c) in enumerate(spec)])


@settings(max_examples=100, deadline=None)
@given(tubes=small_tubes, limit=st.integers(0, 250))
def test_payable_amounts_agree_with_plan_change(tubes: list[Tube], limit: int) -> None:
    payable = PayableAmounts.of(tubes, vnd(limit))
    for amount in range(limit + 1):
        assert payable.can_pay(vnd(amount)) == (plan_change(vnd(amount), tubes) is not None)


@settings(max_examples=100, deadline=None)
@given(tubes=small_tubes, extra=st.integers(0, 5), limit=st.integers(0, 250))
def test_one_more_coin_is_the_same_as_a_fuller_tube(
    tubes: list[Tube], extra: int, limit: int
) -> None:
    if extra >= len(tubes):
        return
    grown = [Tube(t.coin_type, t.value, t.count + (t.coin_type == extra)) for t in tubes]
    direct = PayableAmounts.of(grown, vnd(limit), unit=1)
    shifted = PayableAmounts.of(tubes, vnd(limit), unit=1).with_coin(tubes[extra].value)
    assert shifted == direct


def test_payable_amounts_refuse_questions_they_cannot_answer() -> None:
    payable = PayableAmounts.of(vnd_tubes(1, 1), vnd(1_000))
    with pytest.raises(ChangeError, match="outside"):
        payable.can_pay(vnd(1_200))
    with pytest.raises(MoneyError):
        payable.can_pay(Money(100, "EUR"))
    with pytest.raises(ChangeError, match="divide"):
        PayableAmounts.of(vnd_tubes(1, 1), vnd(1_000), unit=300)
    assert not payable.can_pay(vnd(300))  # off the 100-VND grid of 200 and 500


# -- the policy never promises change it cannot pay, and never refuses without cause ----------

VALUES = [1, 2, 5, 10, 20]


@st.composite
def machines(draw: st.DrawFn) -> dict[str, Any]:
    counts = draw(st.lists(st.integers(0, 4), min_size=len(VALUES), max_size=len(VALUES)))
    return {
        "tubes": [Tube(t, vnd(v), c) for t, (v, c) in enumerate(zip(VALUES, counts, strict=True))],
        "prices": [vnd(p) for p in draw(st.lists(st.integers(0, 90), max_size=4))],
        "coins": {t: vnd(VALUES[t]) for t in draw(st.sets(st.integers(0, len(VALUES) - 1)))},
        "bills": {i: vnd(v) for i, v in enumerate(draw(st.sets(st.sampled_from([25, 50, 100]))))},
        "credit": vnd(draw(st.integers(0, 60))),
        "routed_to_tubes": draw(st.sets(st.integers(0, len(VALUES) - 1))),
        "refund_on_cancel": draw(st.booleans()),
        "bill_escrow": draw(st.booleans()),
        "multi_vend": draw(st.booleans()),
    }


def baskets(prices: list[Money], credit: int, multi: bool) -> set[int]:
    """Everything the customer can spend from ``credit``: by brute force."""
    one = {p.minor for p in prices if p.minor <= credit}
    if not multi:
        return one
    found = set(one)
    frontier = set(one)
    while frontier:
        frontier = {s + p for s in frontier for p in one if s + p <= credit} - found
        found |= frontier
    return found


@settings(max_examples=150, deadline=None)
@given(machines())
def test_safe_offers_keep_every_change_payable_and_refusals_are_real(m: dict[str, Any]) -> None:
    decision = decide_exact_change(**m)
    credit = m["credit"].minor
    offers: list[tuple[Literal["coin", "bill"], int, Money]] = [
        ("coin", t, v) for t, v in m["coins"].items()
    ]
    offers += [("bill", t, v) for t, v in m["bills"].items()]
    refused = {(r.kind, r.type): r for r in decision.refusals}
    assert decision.exact_change_only == bool(refused)
    for kind, type_, value in offers:
        tubes = list(m["tubes"])
        if kind == "coin" and type_ in m["routed_to_tubes"]:
            tubes = [Tube(t.coin_type, t.value, t.count + (t.coin_type == type_)) for t in tubes]
        total = credit + value.minor
        owed = {total - s for s in baskets(m["prices"], total, m["multi_vend"])}
        refund = credit if kind == "bill" and m["bill_escrow"] else total
        if m["refund_on_cancel"]:
            owed.add(refund)
        unpayable = {c for c in owed if plan_change(vnd(c), tubes) is None}
        accepted = decision.accept_coins if kind == "coin" else decision.accept_bills
        assert (type_ in accepted) == (not unpayable)
        assert (type_ in accepted) != ((kind, type_) in refused)
        if unpayable:
            refusal = refused[kind, type_]
            assert refusal.change.minor in unpayable
            if refusal.spent is None:
                assert refusal.change.minor == refund
            else:
                assert refusal.spent.minor + refusal.change.minor == total
