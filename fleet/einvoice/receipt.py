"""What the fleet transmits: one fiscal receipt as an opaque, already rendered document.

The document itself (its XML, seller, lines, VAT) is built by ``protocols.einvoice``; the
transmission layer only needs its key, its kind, the bytes and a few figures to show and
reconcile. The idempotency key is derived from the receipt's identity, never random, so a
re-enqueue, a second fleet worker or a retry after a lost answer all present the same key
to the provider.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime

KEY_SEPARATOR = "/"


class ReceiptError(ValueError):
    """A receipt, its key or a correction of it is not acceptable (the message says why)."""


class ReceiptKind(enum.StrEnum):
    ORIGINAL = "original"
    REPLACEMENT = "replacement"  # supersedes a wrong receipt as a whole
    ADJUSTMENT = "adjustment"  # corrects amounts or lines of a receipt that stays valid


@dataclass(frozen=True, order=True)
class ReceiptKey:
    """A receipt's fiscal identity: the machine that issued it, the series (invoice symbol,
    e.g. ``C25MAA``) and the number within the series."""

    machine_id: str
    series: str
    number: str

    def __post_init__(self) -> None:
        for name in ("machine_id", "series", "number"):
            value = getattr(self, name)
            if KEY_SEPARATOR in value or not value.isprintable() or value != value.strip():
                raise ReceiptError(f"receipt key {name} {value!r} is not a printable token")
        if not self.machine_id or not self.number:
            raise ReceiptError("a receipt key needs a machine id and a number")

    def __str__(self) -> str:
        return KEY_SEPARATOR.join((self.machine_id, self.series, self.number))

    @classmethod
    def parse(cls, text: str) -> ReceiptKey:
        """``machine/series/number`` as printed by :meth:`__str__` (the CLI's spelling)."""
        parts = text.split(KEY_SEPARATOR)
        if len(parts) != 3:
            raise ReceiptError(f"receipt key {text!r}: expected machine/series/number")
        return cls(*parts)

    @classmethod
    def from_receipt_number(cls, machine_id: str, receipt_number: str) -> ReceiptKey:
        """The machine prints ``SERIES-NUMBER`` (e.g. ``C25TAA-0001207``); a number without
        a dash has no series."""
        series, dash, number = receipt_number.strip().rpartition("-")
        if not dash:
            series, number = "", receipt_number.strip()
        return cls(machine_id, series, number)


def idempotency_key(key: ReceiptKey, kind: ReceiptKind) -> str:
    """Stable across processes and releases: a hash of the identity, safe in an HTTP header.
    Length-prefixed fields so ``("a-b", "c")`` and ``("a", "b-c")`` never collide."""
    digest = hashlib.sha256()
    for part in (key.machine_id, key.series, key.number, kind.value):
        raw = part.encode()
        digest.update(len(raw).to_bytes(4, "big") + raw)
    return "rcpt-" + digest.hexdigest()[:40]


@dataclass(frozen=True)
class OutgoingReceipt:
    """One document to transmit. ``total`` is in minor units of ``currency``; ``original``
    names the receipt a replacement or adjustment corrects."""

    key: ReceiptKey
    kind: ReceiptKind
    xml: bytes
    total: int
    currency: str
    issued_at: datetime
    original: ReceiptKey | None = None
    sale_seq: int | None = None  # the sale event it belongs to, when there is one

    def __post_init__(self) -> None:
        if (self.kind is ReceiptKind.ORIGINAL) != (self.original is None):
            raise ReceiptError(
                f"receipt {self.key}: a receipt of kind {self.kind.value} "
                + ("must not name" if self.kind is ReceiptKind.ORIGINAL else "must name")
                + " the receipt it corrects"
            )
        if self.original == self.key:
            raise ReceiptError(f"receipt {self.key} cannot correct itself")
        if not self.xml:
            raise ReceiptError(f"receipt {self.key}: the document is empty")
        if isinstance(self.total, bool) or not isinstance(self.total, int):
            raise ReceiptError(f"receipt {self.key}: total must be integer minor units")
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise ReceiptError(f"receipt {self.key}: currency {self.currency!r} is not ISO 4217")
        if self.issued_at.utcoffset() is None:
            raise ReceiptError(f"receipt {self.key}: issued_at must carry a time zone")

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.key, self.kind)
