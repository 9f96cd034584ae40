"""Builders for e-receipt tests: opaque documents, a settable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fleet.einvoice import OutgoingReceipt, ReceiptKey, ReceiptKind

T0 = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
SERIES = "1C26MAA"


def key(number: int, machine: str = "vm-0001", series: str = SERIES) -> ReceiptKey:
    return ReceiptKey(machine, series, str(number))


def outgoing(
    number: int,
    *,
    machine: str = "vm-0001",
    kind: ReceiptKind = ReceiptKind.ORIGINAL,
    original: ReceiptKey | None = None,
    total: int = 12_000,
    note: str = "",
) -> OutgoingReceipt:
    xml = (
        f"<HDon><SHDon>{number}</SHDon><MS>{machine}</MS><K>{kind.value}</K>"
        f"<T>{total}</T><N>{note}</N></HDon>"
    ).encode()
    return OutgoingReceipt(
        key=key(number, machine),
        kind=kind,
        xml=xml,
        total=total,
        currency="VND",
        issued_at=T0 + timedelta(minutes=number),
        original=original,
    )


class Clock:
    """Time the queue sees; tests move it past backoffs and leases."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now
