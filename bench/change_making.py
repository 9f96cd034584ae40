"""Change making throughput on realistic tubes, against plain greedy measured in the same run.

Greedy is the baseline a changer firmware would use; it is not exact on every coin
set, which is why vendfleet plans by dynamic programming. The ratio says what that
exactness costs. Run: ``.venv/bin/python bench/change_making.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from protocols.change import Tube, plan_best_effort, plan_change
from protocols.exact_change import decide_exact_change
from protocols.money import Money


def vnd(minor: int) -> Money:
    return Money(minor, "VND")


def eur(cents: int) -> Money:
    return Money(cents, "EUR")


VND_TUBES = [Tube(t, vnd(v), 40) for t, v in enumerate([200, 500, 1_000, 2_000, 5_000])]
EUR_TUBES = [Tube(t, eur(v), 60) for t, v in enumerate([5, 10, 20, 50, 100, 200])]
WIDE_TUBES = [Tube(t, vnd(v * 100), 250) for t, v in enumerate(range(1, 17))]


def greedy(amount: Money, tubes: list[Tube]) -> int:
    """Largest coin first, within counts; returns what it left unpaid (minor units)."""
    left = amount.minor
    for tube in sorted(tubes, key=lambda t: -t.value.minor):
        take = min(tube.count, left // tube.value.minor)
        left -= take * tube.value.minor
    return left


def rate(work: Callable[[], object], seconds: float = 0.5) -> float:
    runs, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        work()
        runs += 1
    return runs / elapsed


def main() -> None:
    cases = [
        ("VND 5 tubes, 200..50,000", VND_TUBES, [vnd(a) for a in range(200, 50_001, 200)]),
        ("EUR 6 tubes, 0.05..10.00", EUR_TUBES, [eur(a) for a in range(5, 1_001, 5)]),
        ("16 tubes x 250, 100..40,000", WIDE_TUBES, [vnd(a) for a in range(100, 40_001, 700)]),
    ]
    print(f"{'case':32} {'greedy/s':>12} {'exact/s':>12} {'best-effort/s':>14} {'ratio':>7}")
    for name, tubes, amounts in cases:

        def run_greedy(tubes: list[Tube] = tubes, amounts: list[Money] = amounts) -> None:
            for amount in amounts:
                greedy(amount, tubes)

        def run_exact(tubes: list[Tube] = tubes, amounts: list[Money] = amounts) -> None:
            for amount in amounts:
                plan_change(amount, tubes)

        def run_best(tubes: list[Tube] = tubes, amounts: list[Money] = amounts) -> None:
            for amount in amounts:
                plan_best_effort(amount, tubes)

        g = rate(run_greedy) * len(amounts)
        e = rate(run_exact) * len(amounts)
        b = rate(run_best) * len(amounts)
        print(f"{name:32} {g:12,.0f} {e:12,.0f} {b:14,.0f} {g / e:6.0f}x")

    def decide() -> None:
        decide_exact_change(
            [Tube(t.coin_type, t.value, 3) for t in VND_TUBES],
            prices=[vnd(p) for p in (8_000, 10_000, 12_000, 15_000, 18_000, 25_000)],
            coins={t.coin_type: t.value for t in VND_TUBES},
            bills={0: vnd(10_000), 1: vnd(20_000), 2: vnd(50_000), 3: vnd(100_000)},
            credit=vnd(7_000),
            routed_to_tubes=range(5),
            multi_vend=True,
        )

    print(f"exact-change decisions/s (VND, 9 offers, multi-vend): {rate(decide):,.0f}")


if __name__ == "__main__":
    main()
