"""Simulated customers: they walk up to a machine, pay with coins, a bill or a card,
choose, and sometimes change their mind. One thread per machine, seeded.

They use only what a real customer has: the simulators' coin slot, bill slot and card
reader (control sockets) and the front panel (select / cancel). Whatever they pay ends
in a sale or comes back to them; the machine guarantees that, the demo only watches.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cli.demo.endofday import CardLedger
from cli.demo.machines import DemoMachine, DemoMachineError

# The VND simulators: coin types 0..4 = 200 .. 5,000; bill types 3..5 = 10k, 20k, 50k.
COINS = {5000: 4, 2000: 3, 1000: 2, 500: 1}
BILLS = {10_000: 3, 20_000: 4, 50_000: 5}
CARD_FUNDS = 500_000
METHODS = ("coins", "bill", "card")
METHOD_WEIGHTS = (0.35, 0.25, 0.40)
CHANGE_OF_MIND = 0.05  # pays, then presses cancel instead of choosing


@dataclass
class ShopperStats:
    attempts: Counter[str] = field(default_factory=Counter)
    bought: Counter[str] = field(default_factory=Counter)
    cancelled: int = 0
    refused: int = 0
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str, method: str | None = None) -> None:
        with self.lock:
            if what == "attempt" and method:
                self.attempts[method] += 1
            elif what == "bought" and method:
                self.bought[method] += 1
            elif what == "cancelled":
                self.cancelled += 1
            elif what == "refused":
                self.refused += 1
            else:
                self.errors += 1


class Shopper(threading.Thread):
    """Customers of one machine, arriving at random (exponential gaps)."""

    def __init__(
        self,
        machine: DemoMachine,
        rng: random.Random,
        mean_gap: float,
        *,
        stop: threading.Event,
        stats: ShopperStats,
        ledger: CardLedger,
    ) -> None:
        super().__init__(name=f"shopper-{machine.machine_id}", daemon=True)
        self.ledger = ledger
        self.machine = machine
        self.rng = rng
        self.mean_gap = mean_gap
        self.stop = stop
        self.stats = stats
        self.paused = threading.Event()  # set while the demo services or cuts the machine
        self.idle = threading.Event()  # set between customers
        self.idle.set()

    def run(self) -> None:
        while not self.stop.wait(self.rng.expovariate(1.0 / self.mean_gap)):
            if self.paused.is_set() or not self.machine.running:
                continue
            self.idle.clear()
            try:
                self.visit(self.rng.choices(METHODS, METHOD_WEIGHTS)[0])
            except (RuntimeError, OSError, ValueError, KeyError):  # DemoMachineError too
                # A power cut or an outage mid-purchase: the machine settles the money
                # (sale or refund) by itself; this customer just walks away.
                self.stats.count("error")
            finally:
                self.idle.set()

    def pause(self) -> None:
        """Stop sending customers and wait for the one at the machine to finish."""
        self.paused.set()
        self.idle.wait(60)

    def resume(self) -> None:
        self.paused.clear()

    # --- one customer ----------------------------------------------------------------

    def visit(self, method: str) -> None:
        m = self.machine
        st = m.status()
        if st["busy"] or st["service_mode"] or st["display"]["credit"]:
            return
        choices = [s for s in st["selections"] if s["in_service"] and s["stock"] > 0]
        if not choices:
            return
        if m.is_kiosk:
            picked = self.rng.sample(choices, min(len(choices), self.rng.randint(2, 3)))
            self.stats.count("attempt", method)
            m.wait_accepting()
            self._with_ledger(lambda: self._basket([s["code"] for s in picked], method))
            return
        sel = self.rng.choice(choices)
        self.stats.count("attempt", method)
        m.wait_accepting()
        if method == "card":
            self._card(sel["code"])
        else:
            paid = self._coins(sel["price"]) if method == "coins" else self._bill(sel["price"])
            if not paid:
                return
            if self.rng.random() < CHANGE_OF_MIND:
                m.panel("cancel")
                m.wait_idle()
                self.stats.count("cancelled")
                return
            self._choose(sel["code"], method)

    def _wait_credit(self, amount: int, timeout: float = 10.0) -> bool:
        try:
            self.machine.wait_for(
                lambda: self.machine.status()["display"]["credit"] >= amount,
                timeout,
                f"credit {amount}",
            )
        except DemoMachineError:
            return False
        return True

    def _coins(self, price: int) -> bool:
        paid = 0
        while paid < price:
            value = self.rng.choice(list(COINS))
            self.machine.mdb.call("changer", "insert_coin", coin_type=COINS[value])
            paid += value
        if not self._wait_credit(paid):
            self._give_up()
            return False
        return True

    def _bill(self, price: int) -> bool:
        value = self.rng.choice([v for v in BILLS if v >= price])
        self.machine.mdb.call("bill", "insert_bill", bill_type=BILLS[value])
        if not self._wait_credit(value):  # refused (exact change) or returned
            self._give_up()
            return False
        return True

    def _card(self, code: str) -> None:
        self._with_ledger(lambda: self._card_purchase(code))

    def _with_ledger(self, purchase: Callable[[], object]) -> None:
        m = self.machine
        before = m.mdb.call("cashless1", "status")
        try:
            purchase()
        finally:
            # The processor's record: what the reader charged net of what it gave back
            # (refunded: a failed vend; credited: a negative vend, as a cabinet's capture).
            after = m.mdb.call("cashless1", "status")
            net = sum(
                sign * (after[k] - before[k])
                for k, sign in (("charged", 1), ("refunded", -1), ("credited", -1))
            )
            if net:
                self.ledger.add(datetime.now(UTC), m.machine_id, int(net))

    def _card_purchase(self, code: str) -> None:
        m = self.machine
        m.mdb.call("cashless1", "present_card", funds=CARD_FUNDS)
        m.wait_for(
            lambda: m.status()["display"]["message"] == "Choose a selection", 10, "card session"
        )
        self._choose(code, "card")
        m.wait_for(
            lambda: m.mdb.call("cashless1", "status")["state"] == "enabled", 20, "reader idle"
        )

    def _choose(self, code: str, method: str) -> None:
        m = self.machine
        answer = m.panel("select", code=code)
        if not answer.get("ok"):
            self.stats.count("refused")
            self._give_up()
            return
        m.wait_idle()
        self.stats.count("bought", method)

    def _basket(self, codes: list[str], method: str) -> None:
        """A store customer: several items, paid once, dispensed one by one."""
        m = self.machine
        if method == "card":
            m.mdb.call("cashless1", "present_card", funds=CARD_FUNDS)
            m.wait_for(lambda: m.status()["display"]["message"] == "Choose a selection", 10, "card")
        total = 0
        for code in codes:
            answer = m.panel("basket_add", code=code)
            if not answer.get("ok"):
                continue  # sold out meanwhile: the customer takes the rest
            total += next(s["price"] for s in m.status()["selections"] if s["code"] == code)
        paid = total > 0 and (method == "card" or self._cash_for_basket(total, method))
        if not paid or not m.panel("checkout").get("ok"):
            self.stats.count("refused")
            m.panel("basket_clear")
            self._give_up()
            return
        m.wait_for(
            lambda: (
                (b := m.status()).get("basket") and b["basket"]["phase"] == "done" and not b["busy"]
            ),
            60,
            "the basket to be settled",
        )
        m.wait_idle()
        if method == "card":
            m.wait_for(
                lambda: m.mdb.call("cashless1", "status")["state"] == "enabled", 20, "reader idle"
            )
        self.stats.count("bought", method)

    def _cash_for_basket(self, total: int, method: str) -> bool:
        if method == "coins":
            return self._coins(total)
        paid = 0
        while paid < total:  # 20,000 bills until it is covered
            self.machine.mdb.call("bill", "insert_bill", bill_type=BILLS[20_000])
            paid += 20_000
            if not self._wait_credit(paid):
                self._give_up()
                return False
        return True

    def _give_up(self) -> None:
        """Press cancel: cash credit comes back as change, a card session ends."""
        self.machine.panel("cancel")
        self.machine.wait_idle()
