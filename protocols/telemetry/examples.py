"""One valid message of every kind and one of every command, for the published document.

Built from the models, so the document's examples are valid by construction. The key is
a published test vector, never a real machine's key.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from protocols.einvoice import Payment, Receipt, SaleItem, Seller, build_receipt
from protocols.money import Money
from protocols.telemetry.bodies import (
    BillCount,
    CashBody,
    CashBoxCount,
    CashKind,
    CashTender,
    CoinCount,
    PaymentMethod,
    RefundBody,
    RefundKind,
    SaleBody,
    SaleLine,
    SelectionStock,
    StatusBody,
    StockBody,
    StockKind,
    TubeCount,
)
from protocols.telemetry.bodies_ops import (
    AckOutcome,
    AlarmBody,
    AlarmCode,
    AlarmState,
    CommandAckBody,
    DexReadBody,
    DexSelectionSummary,
    DexSummary,
    DexTotals,
    ServiceAction,
    ServiceActionEntry,
    ServiceVisitBody,
    Severity,
)
from protocols.telemetry.bodies_review import ReviewBody, ShelfEvidence
from protocols.telemetry.commands import (
    ChangePlanogram,
    ChangePrice,
    Command,
    Effective,
    MachineServiceArgs,
    PlanogramChangeArgs,
    PlanogramEntry,
    PriceChangeArgs,
    Reboot,
    RebootArgs,
    RequestDex,
    RequestDexArgs,
    Resync,
    ResyncArgs,
    SelectionServiceArgs,
    SetMachineService,
    SetSelectionService,
)
from protocols.telemetry.envelope import Body, TelemetryEnvelope, make_envelope
from protocols.telemetry.topics import CommandName, Kind

MACHINE = "vm-hcm-0042"
BOOT = 7
AT = datetime(2025, 3, 14, 2, 30, 5, tzinfo=UTC)
STARTED = datetime(2025, 3, 13, 23, 0, 0, tzinfo=UTC)
EXAMPLE_KEY = b"example-key-do-not-use-0123456789"
EXAMPLE_DEX = "DXS*VF00000042*VA*V0/6*1\r\nST*001*0001\r\nID1*0042\r\nSE*3*0001\r\nDXE*1*1\r\n"


def example_receipt() -> Receipt:
    """The e-receipt of the example sale (issued in Vietnam's local time)."""
    return build_receipt(
        symbol="1C25MAA",
        number=1207,
        issued_at=AT.astimezone(timezone(timedelta(hours=7))),
        seller=Seller(
            name="Công ty TNHH Máy Bán Hàng Tự Động Sài Gòn",
            tax_code="0312345678",
            address="12 Lê Lợi, Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh",
        ),
        items=[SaleItem("Trà xanh Không Độ 455ml", 1, Money(12000, "VND"), "8%", code="A3")],
        payment=Payment.CASH,
        secret=EXAMPLE_KEY,
        lookup_url="https://tracuu.example.vn/hoadon",
    )


def example_bodies() -> dict[Kind, Body]:
    return {
        Kind.STATUS: StatusBody(
            online=True,
            firmware="vendfleet 0.1.0",
            config_version="2025-03-01",
            started_at=STARTED,
            outbox_backlog=0,
            devices={"changer": "ready", "validator": "ready", "reader": "ready"},
        ),
        Kind.SALE: SaleBody(
            vend_id=1207,
            selection="A3",
            product="Trà xanh Không Độ 455ml",
            price=12000,
            currency="VND",
            method=PaymentMethod.CASH,
            cash=CashTender(
                coins=[CoinCount(value=2000, count=1, to_tube=True)],
                bills=[BillCount(value=10000, count=1)],
            ),
            receipt_number="1C25MAA-00001207",
            receipt=example_receipt(),
        ),
        Kind.REFUND: RefundBody(
            kind=RefundKind.IOU, amount=3000, currency="VND", payout_id=88, reason="tubes empty"
        ),
        Kind.CASH: CashBody(
            kind=CashKind.COLLECTION,
            amount=1_450_000,
            currency="VND",
            cash_box=CashBoxCount(
                coins_value=50_000,
                bills_value=1_400_000,
                bills=[BillCount(value=10_000, count=40), BillCount(value=20_000, count=50)],
            ),
            tubes=[TubeCount(coin_type=1, value=1000, count=48)],
            detail="route 3, Nguyễn Văn An",
        ),
        Kind.STOCK: StockBody(
            kind=StockKind.CHANGE,
            currency="VND",
            selections=[
                SelectionStock(
                    code="A3",
                    product="Trà xanh Không Độ 455ml",
                    count=6,
                    capacity=10,
                    par=8,
                    price=12000,
                    in_service=True,
                    delta=-1,
                )
            ],
        ),
        Kind.ALARM: AlarmBody(
            code=AlarmCode.TUBES_LOW,
            state=AlarmState.RAISED,
            severity=Severity.WARNING,
            device="changer",
            detail="1000 VND tube below 10 coins",
        ),
        Kind.SERVICE: ServiceVisitBody(
            opened_at=AT - timedelta(minutes=20),
            closed_at=AT,
            operator="route-3",
            currency="VND",
            actions=[
                ServiceActionEntry(action=ServiceAction.FILL, selection="A3", count=4),
                ServiceActionEntry(action=ServiceAction.COLLECT, amount=1_450_000),
            ],
        ),
        Kind.DEX: DexReadBody(
            raw=EXAMPLE_DEX,
            summary=DexSummary(
                machine_serial="0042",
                crc="absent",
                totals=DexTotals(),
                selections=[DexSelectionSummary(selection="A3", price=12000, vends=5)],
                segments=5,
            ),
            reset=False,
            read_at=AT,
        ),
        Kind.ACK: CommandAckBody(
            command_id="0195e8a2-4b7c-7d3e-9f10-2a3b4c5d6e7f",
            name="price_change",
            outcome=AckOutcome.APPLIED,
            detail="A3 now 12000 VND",
        ),
        Kind.REVIEW: ReviewBody(
            session_id=4100,
            reasons=["shelf 1: 300 g is no whole number of WATER"],
            rule="charge_confident_only",
            outcome="charged",
            currency="VND",
            authorised=200000,
            charged=15000,
            due=15000,
            reader=1,
            confident_lines=[
                SaleLine(selection="COLA", product="Coca-Cola 330ml", quantity=1, unit_price=15000)
            ],
            plausible_lines=[
                SaleLine(selection="COLA", product="Coca-Cola 330ml", quantity=1, unit_price=15000),
                SaleLine(selection="WATER", product="Nước suối", quantity=1, unit_price=8000),
            ],
            shelves=[1],
            evidence=[
                ShelfEvidence(shelf=0, weight_before_g=1775, weight_after_g=1420, confidence=100),
                ShelfEvidence(shelf=1, weight_before_g=2600, weight_after_g=2300, confidence=100),
            ],
            alarms=["sensor_disagreement: 300 g is no whole number of WATER (520 g)"],
        ),
    }


def example_envelopes() -> dict[Kind, TelemetryEnvelope]:
    envelopes: dict[Kind, TelemetryEnvelope] = {}
    for seq, (kind, body) in enumerate(example_bodies().items(), start=4099):
        # Status takes no sequence number of its own: it carries the last one assigned.
        number = 4099 if kind is Kind.STATUS else seq
        envelopes[kind] = make_envelope(body, machine_id=MACHINE, boot_id=BOOT, seq=number, ts=AT)
    return envelopes


def example_commands() -> dict[CommandName, Command]:
    """Unsigned; sign them with ``EXAMPLE_KEY`` to get the document's test vectors."""
    common = {
        "machine_id": MACHINE,
        "issued_at": AT,
        "expires_at": AT + timedelta(hours=1),
    }
    return {
        CommandName.PRICE_CHANGE: ChangePrice(
            id="0195e8a2-4b7c-7d3e-9f10-2a3b4c5d6e7f",
            args=PriceChangeArgs(selection="A3", price=12000, currency="VND"),
            **common,
        ),
        CommandName.PLANOGRAM_CHANGE: ChangePlanogram(
            id="0195e8a2-4b7c-7d3e-9f10-2a3b4c5d6e80",
            args=PlanogramChangeArgs(
                selections=[
                    PlanogramEntry(
                        code="A3",
                        product="Trà xanh Không Độ 455ml",
                        price=12000,
                        capacity=10,
                        par=8,
                        motor=3,
                    )
                ],
                currency="VND",
                effective=Effective.NEXT_SERVICE,
                config_version="2025-03-15",
            ),
            **common,
        ),
        CommandName.SELECTION_SERVICE: SetSelectionService(
            id="0195e8a2-4b7c-7d3e-9f10-2a3b4c5d6e81",
            args=SelectionServiceArgs(selection="B1", in_service=False, reason="recall"),
            **common,
        ),
        CommandName.MACHINE_SERVICE: SetMachineService(
            id="0195e8a2-4b7c-7d3e-9f10-2a3b4c5d6e82",
            args=MachineServiceArgs(in_service=False, reason="Bảo trì"),
            **common,
        ),
        CommandName.REQUEST_DEX: RequestDex(
            id="0195e8a2-4b7c-7d3e-9f10-2a3b4c5d6e83", args=RequestDexArgs(reset=True), **common
        ),
        CommandName.RESYNC: Resync(
            id="0195e8a2-4b7c-7d3e-9f10-2a3b4c5d6e84", args=ResyncArgs(after_seq=4096), **common
        ),
        CommandName.REBOOT: Reboot(
            id="0195e8a2-4b7c-7d3e-9f10-2a3b4c5d6e85", args=RebootArgs(), **common
        ),
    }
