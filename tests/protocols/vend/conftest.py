from __future__ import annotations

import pytest

from protocols.money import Money
from protocols.vend import inputs as i
from protocols.vend.model import Selection
from protocols.vend.session import VendSession


def vnd(n: int) -> Money:
    return Money(n, "VND")


SELECTIONS = (
    Selection(
        code="A1",
        product="Trà xanh 0 độ",
        price=vnd(12000),
        capacity=10,
        par=8,
        motor=11,
        item_number=1,
    ),
    Selection(
        code="A2",
        product="Cà phê sữa",
        price=vnd(15000),
        capacity=10,
        par=8,
        motor=12,
        item_number=2,
    ),
    Selection(
        code="B1",
        product="Bánh mì que",
        price=vnd(8000),
        capacity=6,
        par=5,
        motor=21,
        item_number=3,
    ),
)
COINS = ((0, vnd(500)), (1, vnd(1000)), (2, vnd(2000)), (3, vnd(5000)))
BILLS = ((0, vnd(10000)), (1, vnd(20000)), (2, vnd(50000)))


def loaded_session(*, tubes: int = 20, readers: tuple[int, ...] = (0x10,)) -> VendSession:
    s = VendSession("VND")
    s.apply(i.PlanogramLoaded(currency="VND", selections=SELECTIONS))
    for sel in SELECTIONS:
        s.apply(i.StockFilled(code=sel.code, count=sel.par))
    s.apply(i.AcceptorsConfigured(coins=COINS, bills=BILLS, card_readers=readers))
    s.apply(i.TubesRead(tubes=tuple((t, v, tubes) for t, v in COINS)))
    return s


@pytest.fixture
def session() -> VendSession:
    return loaded_session()
