"""What the demo machines sell and where they stand (Ho Chi Minh City, District 1)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from cli.demo.machines import Slot


@dataclass(frozen=True, slots=True)
class DemoProduct:
    name: str
    price: int  # VND
    pack: int  # units per case, for pick lists


PRODUCTS = (
    DemoProduct("Trà xanh 0 độ", 12_000, 24),
    DemoProduct("Cà phê sữa đá", 15_000, 24),
    DemoProduct("Nước suối Lavie", 6_000, 24),
    DemoProduct("Sting dâu", 11_000, 24),
    DemoProduct("Bánh mì que", 8_000, 20),
    DemoProduct("Snack Oishi", 7_000, 30),
    DemoProduct("Sữa đậu nành", 9_000, 24),
    DemoProduct("Trà sữa trân châu", 18_000, 12),
)
SLOTS_PER_MACHINE = 6
CAPACITY = 8

# Depot and machine sites: a warehouse in District 4, machines around District 1.
DEPOT = (10.7578, 106.7013)
CENTRE = (10.7769, 106.7009)


def machine_ids(count: int) -> list[str]:
    return [f"vm-{n:04d}" for n in range(1, count + 1)]


def machine_slots(index: int, rng: random.Random) -> list[Slot]:
    """Six selections A1..B3 with a seeded choice of products; A1 is the same product
    everywhere (the demo's jam happens there)."""
    rest = rng.sample(PRODUCTS[1:], SLOTS_PER_MACHINE - 1)
    chosen = [PRODUCTS[0], *rest]
    codes = ["A1", "A2", "A3", "B1", "B2", "B3"]
    del index  # every machine draws from its own seeded generator
    return [
        Slot(
            code=code,
            product=product.name,
            price=product.price,
            capacity=CAPACITY,
            par=CAPACITY,
            motor=(10 if code[0] == "A" else 20) + int(code[1]),
        )
        for code, product in zip(codes, chosen, strict=True)
    ]


KIOSK_UNITS = ("tower-1", "tower-2")
STORE_ID = "store-q1"


def kiosk_slots() -> list[Slot]:
    """The store's kiosk: eight selections over two towers, every product on offer."""
    return [
        Slot(
            code=f"{'AB'[n // 4]}{n % 4 + 1}",
            product=product.name,
            price=product.price,
            capacity=10,
            par=10,
            motor=11 + n % 4,
            unit=KIOSK_UNITS[n // 4],
        )
        for n, product in enumerate(PRODUCTS)
    ]


def machine_site(rng: random.Random) -> tuple[float, float]:
    """A point within about 3 km of the centre."""
    return (
        round(CENTRE[0] + rng.uniform(-0.025, 0.025), 6),
        round(CENTRE[1] + rng.uniform(-0.025, 0.025), 6),
    )


def product_by_name(name: str) -> DemoProduct:
    return next(p for p in PRODUCTS if p.name == name)
