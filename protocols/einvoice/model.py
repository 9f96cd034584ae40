"""The receipt document: seller, optional buyer, lines, VAT by rate, totals and lookup data.

One pydantic model serves both sides: the machine builds it (:func:`.build.build_receipt`)
and sends it inside the sale event as JSON, the fleet turns it into the tax authority's
XML (:mod:`.xml_write`). Validating a :class:`Receipt` re-checks the arithmetic -- line
amounts, VAT per rate by the rule in :mod:`.vat`, totals -- so a document that does not
add up cannot exist, wherever it came from. Amounts are integer minor units of
``currency``; text is stored NFC-normalised, trimmed and free of control characters,
so it survives the XML round trip byte for byte.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from datetime import date
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    field_validator,
    model_validator,
)

from protocols.einvoice.errors import EinvoiceError
from protocols.einvoice.symbol import InvoiceSymbol, cash_register_symbol
from protocols.einvoice.vat import check_rate, split_by_rate
from protocols.money import CURRENCIES, Money

MAX_NUMBER = 99_999_999  # SHDon has at most eight digits
LOOKUP_CODE_PATTERN = r"^[A-Z2-7]{10}$"
# Characters XML 1.0 cannot carry, plus the controls a one-line name or address never has.
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _no_float(value: Any) -> Any:
    if isinstance(value, float):
        # ValueError, not TypeError: pydantic turns only ValueError into a field error.
        raise ValueError(  # noqa: TRY004
            f"must be an integer, not the float {value!r} (amounts are in minor units)"
        )
    return value


def _clean_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFC", value).strip()
    bad = _BAD_CHARS.search(text)
    if bad:
        raise ValueError(f"contains the control character {bad.group()!r}")
    return text


Int = Annotated[int, BeforeValidator(_no_float), Strict()]
Text = Annotated[str, BeforeValidator(_clean_text), Field(min_length=1)]
TaxCode = Annotated[str, Field(pattern=r"^[0-9]{10}(-[0-9]{3})?$")]  # MST: 10 digits, branch -NNN
Rate = Annotated[str, AfterValidator(check_rate)]


class _Model(BaseModel):
    # Unknown (newer) fields are ignored, so an older fleet still reads a newer machine;
    # instances are re-checked when nested, so a model_copy()ed part cannot slip through.
    model_config = ConfigDict(frozen=True, extra="ignore", revalidate_instances="always")


class Payment(enum.StrEnum):
    CASH = "cash"
    CASHLESS = "cashless"

    @property
    def text(self) -> str:
        """As ``HTTToan`` writes it."""
        return _PAYMENT_TEXT[self]

    @classmethod
    def from_text(cls, text: str) -> Payment:
        for method, written in _PAYMENT_TEXT.items():
            if text == written:
                return method
        known = ", ".join(repr(t) for t in _PAYMENT_TEXT.values())
        raise EinvoiceError("payment", f"unknown payment method {text!r} (known: {known})")


_PAYMENT_TEXT = {Payment.CASH: "Tiền mặt", Payment.CASHLESS: "Không dùng tiền mặt"}


class Relation(enum.StrEnum):
    """How a receipt relates to an earlier one it corrects (``TCHDon``)."""

    REPLACEMENT = "replacement"  # replaces the original entirely
    ADJUSTMENT = "adjustment"  # adds to (or, negative, takes from) the original

    @property
    def code(self) -> int:
        return 1 if self is Relation.REPLACEMENT else 2


class Seller(_Model):
    name: Text = Field(max_length=400, description="Registered name (Ten).")
    tax_code: TaxCode = Field(description="Tax code (MST).")
    address: Text = Field(max_length=400, description="Registered address (DChi).")


class Buyer(_Model):
    """Only when the customer asks for it: a name, and a tax code or personal id."""

    name: Text | None = Field(default=None, max_length=400, description="Name (Ten).")
    tax_code: TaxCode | None = Field(default=None, description="Tax code (MST).")
    personal_id: str | None = Field(
        default=None, pattern=r"^[0-9]{9}([0-9]{3})?$", description="CCCD/CMND number (CCCDan)."
    )
    address: Text | None = Field(default=None, max_length=400, description="Address (DChi).")

    @model_validator(mode="after")
    def _someone(self) -> Self:
        if self.name is None and self.tax_code is None and self.personal_id is None:
            raise EinvoiceError("buyer", "give at least a name, a tax code or a personal id")
        return self


class ReceiptLine(_Model):
    product: Text = Field(max_length=500, description="Goods name (THHDVu).")
    code: Text | None = Field(default=None, max_length=50, description="Article code (MHHDVu).")
    unit: Text | None = Field(default=None, max_length=50, description="Unit (DVTinh).")
    quantity: Int = Field(ge=-1_000_000, le=1_000_000, description="Units (SLuong).")
    unit_price: Int = Field(ge=0, le=10**15, description="Price of one unit incl. VAT (DGia).")
    vat_rate: Rate = Field(description="VAT rate (TSuat): 0%, 5%, 8%, 10%, KCT, KKKNT ...")
    amount: Int = Field(description="quantity x unit_price, incl. VAT (ThTien).")

    @model_validator(mode="after")
    def _amount(self) -> Self:
        if self.quantity == 0:
            raise EinvoiceError("quantity", "must not be 0")
        if self.amount != self.quantity * self.unit_price:
            raise EinvoiceError(
                "amount",
                f"{self.amount} is not quantity x unit_price = {self.quantity * self.unit_price}",
            )
        return self


class RateTotal(_Model):
    """The receipt's amounts at one VAT rate (``LTSuat``)."""

    vat_rate: Rate = Field(description="VAT rate (TSuat).")
    before_vat: Int = Field(description="Amount before VAT at this rate (ThTien).")
    vat: Int = Field(description="VAT at this rate (TThue).")


class OriginalRef(_Model):
    """The receipt this one replaces or adjusts (``TTHDLQuan``)."""

    relation: Relation = Field(description="Replacement (TCHDon 1) or adjustment (2).")
    symbol: str = Field(description="The original's symbol, e.g. 1C26MAB.")
    number: Int = Field(ge=1, le=MAX_NUMBER, description="The original's number.")
    issued_on: date = Field(description="The original's date of issuance, YYYY-MM-DD.")
    reason: Text | None = Field(default=None, max_length=255, description="Why (GChu).")

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        return str(InvoiceSymbol.parse(value))


class Receipt(_Model):
    """One cash-register e-receipt (Vietnam: symbol kind M), numbered on the machine.

    Prices include VAT; ``rate_totals`` split it out per rate (VAT = gross x p / (100 + p),
    rounded half away from zero, once per rate), and the totals add up exactly.
    """

    symbol: str = Field(description="Template digit + series, e.g. 1C26MAB.")
    number: Int = Field(ge=1, le=MAX_NUMBER, description="Gap-free number in the series.")
    issued_at: AwareDatetime = Field(description="Time of sale, in the seller's local time.")
    currency: str = Field(description="ISO 4217 code of every amount.")
    seller: Seller = Field(description="The operator (NBan).")
    buyer: Buyer | None = Field(default=None, description="Only if the customer asked (NMua).")
    lines: tuple[ReceiptLine, ...] = Field(
        min_length=1, max_length=1000, description="What was sold (HHDVu)."
    )
    rate_totals: tuple[RateTotal, ...] = Field(description="Per VAT rate, first-seen order.")
    total_before_vat: Int = Field(description="Sum of before_vat over the rates (TgTCThue).")
    total_vat: Int = Field(description="Sum of VAT over the rates (TgTThue).")
    total: Int = Field(description="Total payable incl. VAT = sum of line amounts (TgTTTBSo).")
    payment: Payment = Field(description="How the customer paid (HTTToan).")
    lookup_code: str = Field(
        pattern=LOOKUP_CODE_PATTERN, description="Code to look the receipt up (HMAC, base32)."
    )
    qr_payload: Text = Field(max_length=1000, description="What the QR code holds (DLQRCode).")
    authority_code: str | None = Field(
        default=None, pattern=r"^[A-Z0-9-]{1,40}$", description="Tax-authority code (MCCQT)."
    )
    original: OriginalRef | None = Field(
        default=None, description="The receipt this one replaces or adjusts."
    )

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        return str(cash_register_symbol(value))

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if value not in CURRENCIES:
            raise EinvoiceError("currency", f"unknown currency {value!r}")
        return value

    @model_validator(mode="after")
    def _adds_up(self) -> Self:
        adjusting = self.original is not None and self.original.relation is Relation.ADJUSTMENT
        for n, line in enumerate(self.lines):
            if line.quantity < 0 and not adjusting:
                raise EinvoiceError(f"lines[{n}].quantity", "negative only in an adjustment")
        expected = split_by_rate((ln.vat_rate, ln.amount) for ln in self.lines)
        got = [(r.vat_rate, r.before_vat, r.vat) for r in self.rate_totals]
        if got != expected:
            raise EinvoiceError("rate_totals", f"{got} should be {expected} (rate, before, VAT)")
        checks = (
            (
                "total_before_vat",
                self.total_before_vat,
                sum(r.before_vat for r in self.rate_totals),
            ),
            ("total_vat", self.total_vat, sum(r.vat for r in self.rate_totals)),
            ("total", self.total, sum(ln.amount for ln in self.lines)),
        )
        for name, value, want in checks:
            if value != want:
                raise EinvoiceError(name, f"{value} should be {want}")
        if self.original is not None and (self.original.symbol, self.original.number) == (
            self.symbol,
            self.number,
        ):
            raise EinvoiceError("original", "a receipt cannot replace or adjust itself")
        return self

    @property
    def parsed_symbol(self) -> InvoiceSymbol:
        return InvoiceSymbol.parse(self.symbol)

    @property
    def issued_on(self) -> date:
        """The date of issuance (``NLap``): the sale's date in the seller's local time."""
        return self.issued_at.date()

    @property
    def total_money(self) -> Money:
        return Money(self.total, self.currency)

    @property
    def seller_tax_code(self) -> str:
        return self.seller.tax_code

    @property
    def total_vat_money(self) -> Money:
        return Money(self.total_vat, self.currency)

    @property
    def key(self) -> tuple[str, str, int]:
        """Unique per operator: seller tax code, symbol, number."""
        return (self.seller.tax_code, self.symbol, self.number)
