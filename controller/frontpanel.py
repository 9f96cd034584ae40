"""What the front panel may ask: customer keys, and service mode behind the door switch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controller.panel import PanelError
from protocols.vend import inputs as i

if TYPE_CHECKING:
    from controller.machine import Machine


class FrontPanel:
    """Panel requests -> session inputs. Service commands need the door open."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.service_mode = False

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request["cmd"]
        handler = getattr(self, f"_cmd_{cmd}", None)
        if handler is None:
            raise PanelError(f"unknown command {cmd!r}")
        result: dict[str, Any] = await handler(request)
        return result

    def _code(self, request: dict[str, Any]) -> str:
        code = request.get("code")
        if not isinstance(code, str) or code not in self.machine.session.selections:
            raise PanelError(f"unknown selection {code!r}")
        return code

    def _service_only(self) -> None:
        if not self.service_mode:
            raise PanelError("service mode only: open the door first (service_open)")

    async def _submit(self, event: i.VendInput) -> dict[str, Any]:
        rejected = await self.machine.submit(event)
        if rejected:
            raise PanelError(rejected)
        return self.machine.display()

    # --- customer ----------------------------------------------------------------------

    def _cabinet_idle(self) -> None:
        if self.machine.cabinet is not None and self.machine.cabinet.active:
            raise PanelError("the cabinet is open: finish there first")

    async def _cmd_select(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.service_mode:
            raise PanelError("machine is in service")
        self._cabinet_idle()
        return await self._submit(i.SelectionPressed(code=self._code(request)))

    async def _cmd_cancel(self, _request: dict[str, Any]) -> dict[str, Any]:
        await self.machine.submit(i.ReturnRequested(reason="cancel key"))
        return self.machine.display()

    async def _cmd_status(self, _request: dict[str, Any]) -> dict[str, Any]:
        return self.machine.status()

    # --- basket (automated stores) -------------------------------------------------------

    def _basket_answer(self) -> dict[str, Any]:
        """The display and the basket: its lines while building, then every item's outcome."""
        return {**self.machine.display(), "basket": self.machine.basket_view()}

    async def _basket_submit(self, event: i.VendInput) -> dict[str, Any]:
        if self.service_mode:
            raise PanelError("machine is in service")
        self._cabinet_idle()
        await self._submit(event)
        return self._basket_answer()

    @staticmethod
    def _quantity(request: dict[str, Any], default: int | None) -> int | None:
        quantity = request.get("quantity", default)
        if quantity is None:
            return None
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= 99:
            raise PanelError("quantity must be an integer from 1 to 99")
        return quantity

    async def _cmd_basket_add(self, request: dict[str, Any]) -> dict[str, Any]:
        quantity = self._quantity(request, 1)
        assert quantity is not None
        return await self._basket_submit(
            i.BasketItemAdded(code=self._code(request), quantity=quantity)
        )

    async def _cmd_basket_remove(self, request: dict[str, Any]) -> dict[str, Any]:
        quantity = self._quantity(request, None)
        return await self._basket_submit(
            i.BasketItemRemoved(code=self._code(request), quantity=quantity)
        )

    async def _cmd_basket_clear(self, _request: dict[str, Any]) -> dict[str, Any]:
        return await self._basket_submit(i.BasketCleared())

    async def _cmd_basket(self, _request: dict[str, Any]) -> dict[str, Any]:
        return self._basket_answer()

    async def _cmd_checkout(self, _request: dict[str, Any]) -> dict[str, Any]:
        return await self._basket_submit(i.CheckoutRequested())

    _cmd_basket_pay = _cmd_checkout

    # --- smart cabinet -----------------------------------------------------------------

    async def _cmd_cabinet_open(self, _request: dict[str, Any]) -> dict[str, Any]:
        if self.service_mode:
            raise PanelError("machine is in service")
        if self.machine.cabinet is None:
            raise PanelError("this machine has no cabinet")
        return {**self.machine.display(), **await self.machine.cabinet.request_open()}

    async def _cmd_cabinet(self, _request: dict[str, Any]) -> dict[str, Any]:
        if self.machine.cabinet is None:
            raise PanelError("this machine has no cabinet")
        return {**self.machine.display(), "cabinet": self.machine.cabinet.view()}

    # --- service -----------------------------------------------------------------------

    async def _cmd_service_open(self, _request: dict[str, Any]) -> dict[str, Any]:
        session = self.machine.session
        if session.busy:
            raise PanelError("a vend or payout is running; try again in a moment")
        if not self.service_mode:
            self.service_mode = True
            await self.machine.service_opened()
        return {"service_mode": True}

    async def _cmd_service_close(self, _request: dict[str, Any]) -> dict[str, Any]:
        was_open, self.service_mode = self.service_mode, False
        # Tubes may have been filled or emptied by hand: read them before selling again.
        self.machine.refresh_tubes()
        if was_open:
            # The visit report, then any planogram the fleet sent for this visit.
            await self.machine.service_closed()
        return {"service_mode": False}

    async def _cmd_fill(self, request: dict[str, Any]) -> dict[str, Any]:
        """``fill`` alone fills every selection to par; ``code`` and ``count`` narrow it."""
        self._service_only()
        selections = self.machine.session.selections
        codes = [self._code(request)] if "code" in request else list(selections)
        filled = {}
        for code in codes:
            count = request.get("count", selections[code].selection.par)
            if not isinstance(count, int) or count < 0:
                raise PanelError("count must be a non-negative integer")
            await self._submit(i.StockFilled(code=code, count=count))
            filled[code] = count
        return {"filled": filled}

    async def _cmd_test_vend(self, request: dict[str, Any]) -> dict[str, Any]:
        self._service_only()
        return await self._submit(i.TestVendRequested(code=self._code(request)))

    async def _cmd_out_of_service(self, request: dict[str, Any]) -> dict[str, Any]:
        reason = str(request.get("reason", "operator"))
        return await self._submit(
            i.ServiceStateChanged(code=self._code(request), in_service=False, reason=reason)
        )

    async def _cmd_in_service(self, request: dict[str, Any]) -> dict[str, Any]:
        self._service_only()
        code = self._code(request)
        await self.machine.clear_motor_fault(code)
        return await self._submit(i.ServiceStateChanged(code=code, in_service=True))

    async def _cmd_cash_collect(self, _request: dict[str, Any]) -> dict[str, Any]:
        """Tube and cash box levels at this moment, recorded for the audit trail."""
        self._service_only()
        return await self.machine.collect_cash()

    async def _cmd_tube_payout(self, request: dict[str, Any]) -> dict[str, Any]:
        self._service_only()
        coin_type, count = request.get("coin_type"), request.get("count")
        if not isinstance(coin_type, int) or not isinstance(count, int) or count <= 0:
            raise PanelError("tube_payout needs integer coin_type and a positive count")
        self.machine.service_payout(coin_type, count)
        return {"dispensing": {"coin_type": coin_type, "count": count}}
