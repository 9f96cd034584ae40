"""Element names of the tax authority's invoice XML (Decision 1450/QĐ-TCT family), in one place.

The writer and the reader share these, so the two cannot drift apart. Amounts are
written in the currency's major unit with its decimal places (VND has none).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from protocols.einvoice.errors import EinvoiceError
from protocols.money import CURRENCIES

FORMAT_VERSION = "2.1.0"  # PBan: the data format version we write
ROOT = "HDon"
DATA = "DLHDon"  # business data; signatures (DSCKS) are added by the transmitting side
DATA_ID = "data"
GENERAL = "TTChung"
CONTENT = "NDHDon"
AUTHORITY_CODE = "MCCQT"
QR = "DLQRCode"
# TTChung
VERSION, NAME, TEMPLATE, SERIES, NUMBER, DATE = (
    "PBan",
    "THDon",
    "KHMSHDon",
    "KHHDon",
    "SHDon",
    "NLap",
)
CURRENCY, RATE, PAYMENT = "DVTTe", "TGia", "HTTToan"
RELATED, RELATION, RELATED_KIND = "TTHDLQuan", "TCHDon", "LHDCLQuan"
RELATED_TEMPLATE, RELATED_SERIES, RELATED_NUMBER = "KHMSHDCLQuan", "KHHDCLQuan", "SHDCLQuan"
RELATED_DATE, NOTE = "NLHDCLQuan", "GChu"
# TTKhac: extension pairs, used for what the fixed fields do not carry
EXTRA, EXTRA_ITEM, EXTRA_NAME, EXTRA_TYPE, EXTRA_VALUE = (
    "TTKhac",
    "TTin",
    "TTruong",
    "KDLieu",
    "DLieu",
)
EXTRA_TIME = "TGLap"  # the exact time of sale (NLap holds only the date)
EXTRA_LOOKUP = "MTCuu"  # the lookup code
# NDHDon
SELLER, BUYER, PARTY_NAME, TAX_CODE, ADDRESS, PERSONAL_ID = (
    "NBan",
    "NMua",
    "Ten",
    "MST",
    "DChi",
    "CCCDan",
)
LINES, LINE = "DSHHDVu", "HHDVu"
LINE_NATURE, LINE_NO, LINE_CODE, LINE_NAME, LINE_UNIT = "TChat", "STT", "MHHDVu", "THHDVu", "DVTinh"
QUANTITY, UNIT_PRICE, LINE_AMOUNT, VAT_RATE = "SLuong", "DGia", "ThTien", "TSuat"
GOODS = "1"  # TChat: goods or services (2 promotion, 3 discount, 4 note)
RELATED_BY_DECREE_123 = "1"  # LHDCLQuan: the original is an invoice under Decree 123
TOTALS, RATE_TOTALS, RATE_TOTAL, RATE_VAT = "TToan", "THTTLTSuat", "LTSuat", "TThue"
TOTAL_BEFORE, TOTAL_VAT, TOTAL = "TgTCThue", "TgTThue", "TgTTTBSo"


def digits(currency: str) -> int:
    return CURRENCIES[currency].minor_digits


def amount_text(minor: int, currency: str) -> str:
    """Minor units as the XML writes them: ``12000`` VND, ``1.50`` EUR, ``-3.05`` EUR."""
    d = digits(currency)
    if not d:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**d)
    return f"{sign}{whole}.{frac:0{d}d}"


def parse_amount(text: str, currency: str, field: str) -> int:
    """The inverse of :func:`amount_text`; finer than a minor unit is an error, not a rounding."""
    if not text or any(c not in "0123456789.-" for c in text) or len(text) > 30:
        raise EinvoiceError(field, f"{text!r} is not an amount")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise EinvoiceError(field, f"{text!r} is not an amount") from None
    minor = value.scaleb(digits(currency))
    if minor != minor.to_integral_value():
        raise EinvoiceError(field, f"{text!r} is finer than one minor unit of {currency}")
    return int(minor)


def parse_int(text: str, field: str) -> int:
    body = text.removeprefix("-")
    if not body or len(body) > 18 or any(c not in "0123456789" for c in body):
        raise EinvoiceError(field, f"{text!r} is not a whole number")
    return int(text)
