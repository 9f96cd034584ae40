"""VAT rates as the XML writes them, and the one rounding rule that splits VAT out.

Rates are written like ``TSuat``: a percentage (``0%``, ``5%``, ``8%``, ``10%``, or with
up to two decimals for other markets, ``7.7%``), ``KCT`` (not subject to VAT) or
``KKKNT`` (not declared, not paid). The last two carry no VAT.

Rounding rule. Vending prices include VAT: the customer pays the shelf price. VAT is
computed once per rate over the receipt, not per line::

    vat        = gross * p / (100 + p), rounded half away from zero to a minor unit
    before_vat = gross - vat

where ``gross`` is the sum of the rate's line amounts. So per rate, and for the receipt,
``before_vat + vat == gross`` exactly, and the receipt total is the sum of its lines.
Half away from zero keeps an adjustment (negative amounts) the mirror image of the sale
it corrects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fractions import Fraction

from protocols.einvoice.errors import EinvoiceError

NO_VAT = frozenset({"KCT", "KKKNT"})
_PERCENT = re.compile(r"([0-9]{1,2})(?:\.([0-9]{1,2}))?%")


def check_rate(rate: str, *, field: str = "vat_rate") -> str:
    """The rate as written, if it is one; raises :class:`EinvoiceError` otherwise."""
    if not isinstance(rate, str) or (rate not in NO_VAT and not _PERCENT.fullmatch(rate)):
        raise EinvoiceError(
            field, f"{rate!r} is not a VAT rate (e.g. 0%, 5%, 8%, 10%, KCT or KKKNT)"
        )
    m = _PERCENT.fullmatch(rate)
    if m is not None and (
        (m[2] is not None and m[2].endswith("0")) or (m[1] != "0" and m[1][0] == "0")
    ):
        raise EinvoiceError(field, f"{rate!r}: write the rate without padding zeros")
    return rate


def percent(rate: str) -> Fraction:
    """The rate as an exact percentage; 0 for KCT and KKKNT."""
    check_rate(rate)
    if rate in NO_VAT:
        return Fraction(0)
    return Fraction(rate.removesuffix("%"))


def _round_half_away(value: Fraction) -> int:
    whole, rest = divmod(abs(value.numerator), value.denominator)
    if 2 * rest >= value.denominator:
        whole += 1
    return whole if value >= 0 else -whole


def vat_included(gross: int, rate: str) -> int:
    """The VAT inside ``gross`` minor units at ``rate`` (see the module's rounding rule)."""
    p = percent(rate)
    return _round_half_away(gross * p / (100 + p))


def split_by_rate(lines: Iterable[tuple[str, int]]) -> list[tuple[str, int, int]]:
    """``(rate, gross)`` lines -> ``(rate, before_vat, vat)`` per rate, in first-seen order."""
    gross: dict[str, int] = {}
    for rate, amount in lines:
        gross[rate] = gross.get(rate, 0) + amount
    out = []
    for rate, total in gross.items():
        vat = vat_included(total, rate)
        out.append((rate, total - vat, vat))
    return out
