"""Invoice symbols (Circular 78/2021): the template digit and the six-character series.

``1C26MAB`` reads: template 1 (VAT invoice), ``C`` coded by the tax authority, issued in
2026, kind ``M`` (generated from a cash register), ``AB`` chosen by the seller. In the XML
the template digit is ``KHMSHDon`` and the rest is ``KHHDon``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from protocols.einvoice.errors import EinvoiceError

TEMPLATES = {
    1: "Hóa đơn giá trị gia tăng",
    2: "Hóa đơn bán hàng",
    3: "Hóa đơn bán tài sản công",
    4: "Hóa đơn bán hàng dự trữ quốc gia",
    5: "Tem, vé, thẻ",
    6: "Phiếu xuất kho",
}
# Kind letters of the series; M is the cash-register invoice this package issues.
KINDS = frozenset("TDLMNBGH")
CASH_REGISTER = "M"
_SYMBOL = re.compile(r"([1-6])([CK][0-9]{2}[A-Z]{3})")
_SERIES = re.compile(r"([CK])([0-9]{2})([A-Z])([A-Z]{2})")


@dataclass(frozen=True, slots=True)
class InvoiceSymbol:
    template: int  # 1 VAT invoice, 2 sales invoice, ... (KHMSHDon)
    coded: bool  # C: carries a tax-authority code; K: without
    year: int  # two digits, the year of issuance
    kind: str  # one letter: M = cash register
    letters: str  # two letters chosen by the seller

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            raise EinvoiceError("symbol", f"template must be 1-6, got {self.template}")
        if not 0 <= self.year <= 99:
            raise EinvoiceError("symbol", f"year must have two digits, got {self.year}")
        if self.kind not in KINDS:
            raise EinvoiceError("symbol", f"unknown invoice kind letter {self.kind!r}")
        if not re.fullmatch(r"[A-Z]{2}", self.letters):
            raise EinvoiceError("symbol", f"must end in two capital letters, got {self.letters!r}")

    @classmethod
    def parse(cls, text: str, *, field: str = "symbol") -> InvoiceSymbol:
        """``1C26MAB`` -> its parts; anything else raises :class:`EinvoiceError`."""
        m = _SYMBOL.fullmatch(text) if isinstance(text, str) else None
        if m is None:
            raise EinvoiceError(
                field,
                f"{text!r} is not an invoice symbol (template digit 1-6, C or K, "
                "two-digit year, kind letter, two capital letters, e.g. 1C26MAB)",
            )
        return cls._of(int(m[1]), m[2], field)

    @classmethod
    def from_parts(cls, template: str, series: str, *, field: str = "symbol") -> InvoiceSymbol:
        """From the XML's ``KHMSHDon`` and ``KHHDon``."""
        if not re.fullmatch(r"[1-6]", template) or not _SERIES.fullmatch(series):
            raise EinvoiceError(field, f"{template!r} + {series!r} is not an invoice symbol")
        return cls._of(int(template), series, field)

    @classmethod
    def _of(cls, template: int, series: str, field: str) -> InvoiceSymbol:
        m = _SERIES.fullmatch(series)
        if m is None:
            raise EinvoiceError(field, f"{series!r} is not an invoice series")
        if m[3] not in KINDS:
            raise EinvoiceError(
                field, f"unknown invoice kind letter {m[3]!r} (known: T D L M N B G H)"
            )
        return cls(template, m[1] == "C", int(m[2]), m[3], m[4])

    @property
    def series(self) -> str:
        """The six characters after the template digit (``KHHDon``)."""
        return f"{'C' if self.coded else 'K'}{self.year:02d}{self.kind}{self.letters}"

    @property
    def is_cash_register(self) -> bool:
        return self.kind == CASH_REGISTER

    @property
    def title(self) -> str:
        """The invoice name printed on it (``THDon``)."""
        return TEMPLATES[self.template]

    def for_year(self, year: int) -> InvoiceSymbol:
        """The same series in another year (the year part follows the date of issuance)."""
        return InvoiceSymbol(self.template, self.coded, year % 100, self.kind, self.letters)

    def __str__(self) -> str:
        return f"{self.template}{self.series}"


def cash_register_symbol(text: str, *, field: str = "symbol") -> InvoiceSymbol:
    """Parse a symbol and insist on a coded cash-register series (``<digit>C<yy>M<xx>``)."""
    sym = InvoiceSymbol.parse(text, field=field)
    if not sym.coded or not sym.is_cash_register:
        raise EinvoiceError(
            field, f"{text!r} is not a cash-register symbol (<digit>C<yy>M<two letters>)"
        )
    return sym
