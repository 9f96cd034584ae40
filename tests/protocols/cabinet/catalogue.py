"""A small planogram shared by the cabinet tests: the simulator's default products."""

from __future__ import annotations

from protocols.cabinet.model import CabinetPolicy, ChargeRule, Planogram, Product
from protocols.money import Money

COLA = Product("COLA", "Cola 330 ml", Money(12_000), unit_weight_g=355, tolerance_g=10)
WATER = Product("WATER", "Water 500 ml", Money(8_000), unit_weight_g=520, tolerance_g=12)
SANDWICH = Product("SANDWICH", "Sandwich", Money(35_000), unit_weight_g=180, tolerance_g=15)
SALAD = Product("SALAD", "Salad", Money(45_000), unit_weight_g=260, tolerance_g=20)
PRODUCTS = (COLA, WATER, SANDWICH, SALAD)


def make_tag(shelf: int, index: int) -> str:
    """The simulator's tag numbering (drivers.sim.cabinet.make_tag), written out."""
    return f"E280{shelf:04X}{index:016X}"


def planogram(*, tags_per_shelf: int = 0) -> Planogram:
    tags = {
        make_tag(shelf, i): product.sku
        for shelf, product in enumerate(PRODUCTS)
        for i in range(tags_per_shelf)
    }
    return Planogram(dict(enumerate(PRODUCTS)), tags)


def policy(
    pre_auth: int = 200_000, rule: ChargeRule = ChargeRule.CHARGE_CONFIDENT_ONLY, **kwargs: object
) -> CabinetPolicy:
    return CabinetPolicy(Money(pre_auth), disagreement_rule=rule, **kwargs)  # type: ignore[arg-type]
