"""Money as integer minor units of one currency, and the one place MDB scaling is applied.

MDB peripherals report values as small integers ("units") that mean
``units * scale_factor / 10**decimal_places`` in the currency's major unit. Everything
else in vendfleet works in minor units (cents, đồng), so :class:`MdbScaling` is the
single boundary where device units turn into :class:`Money` and back. Floats never
appear: a value that does not convert exactly is an error, not a rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self


class MoneyError(ValueError):
    """A money value that cannot be represented or combined exactly."""


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency: alphabetic code, numeric code and minor-unit digits."""

    code: str
    numeric: int
    minor_digits: int

    def __str__(self) -> str:
        return self.code


# The currencies we have met on real peripherals; others can be added with `Currency(...)`.
_KNOWN = (
    Currency("VND", 704, 0),
    Currency("EUR", 978, 2),
    Currency("USD", 840, 2),
    Currency("GBP", 826, 2),
    Currency("CHF", 756, 2),
    Currency("JPY", 392, 0),
    Currency("RUB", 643, 2),
    Currency("PLN", 985, 2),
    Currency("CZK", 203, 2),
    Currency("SEK", 752, 2),
    Currency("AUD", 36, 2),
    Currency("CAD", 124, 2),
    Currency("THB", 764, 2),
    Currency("SGD", 702, 2),
    Currency("KRW", 410, 0),
)
CURRENCIES: dict[str, Currency] = {c.code: c for c in _KNOWN}
_BY_NUMERIC: dict[int, Currency] = {c.numeric: c for c in _KNOWN}
# MDB's older "country code" form uses telephone prefixes; only the common ones map cleanly.
_BY_PHONE: dict[int, Currency] = {
    1: CURRENCIES["USD"],
    7: CURRENCIES["RUB"],
    41: CURRENCIES["CHF"],
    44: CURRENCIES["GBP"],
    81: CURRENCIES["JPY"],
    84: CURRENCIES["VND"],
}


def currency(code: str) -> Currency:
    """Look a currency up by its alphabetic code."""
    try:
        return CURRENCIES[code.upper()]
    except KeyError:
        raise MoneyError(f"unknown currency {code!r}") from None


def currency_from_mdb(code: int) -> Currency | None:
    """Decode MDB's 16-bit packed-BCD country/currency code (e.g. 0x1704 = VND).

    A leading BCD digit of 1 means an ISO 4217 numeric code; 0 means a telephone
    country code. Returns None for codes we cannot map (0xFFFF = "unknown" included).
    """
    digits = [(code >> shift) & 0xF for shift in (12, 8, 4, 0)]
    if any(d > 9 for d in digits):
        return None
    number = digits[1] * 100 + digits[2] * 10 + digits[3]
    if digits[0] == 1:
        return _BY_NUMERIC.get(number)
    if digits[0] == 0:
        return _BY_PHONE.get(number)
    return None


def currency_to_mdb(cur: Currency) -> int:
    """Encode a currency as MDB packed BCD in the ISO form (leading digit 1)."""
    n = cur.numeric
    return 0x1000 | ((n // 100) << 8) | (((n // 10) % 10) << 4) | (n % 10)


@dataclass(frozen=True, slots=True, order=True)
class Money:
    """An amount in integer minor units of one currency."""

    minor: int
    currency: str = "VND"

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise MoneyError(f"money must be an integer number of minor units, got {self.minor!r}")

    @classmethod
    def zero(cls, currency: str = "VND") -> Self:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __mul__(self, factor: int) -> Money:
        if not isinstance(factor, int) or isinstance(factor, bool):
            raise MoneyError("money can only be multiplied by an integer")
        return Money(self.minor * factor, self.currency)

    __rmul__ = __mul__

    def __bool__(self) -> bool:
        return self.minor != 0

    def format(self) -> str:
        """Human form with the currency's decimal places, e.g. ``12,000 VND`` or ``1.50 EUR``."""
        digits = CURRENCIES[self.currency].minor_digits if self.currency in CURRENCIES else 0
        sign = "-" if self.minor < 0 else ""
        whole, frac = divmod(abs(self.minor), 10**digits)
        text = f"{whole:,}" + (f".{frac:0{digits}d}" if digits else "")
        return f"{sign}{text} {self.currency}"

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True, slots=True)
class MdbScaling:
    """How one peripheral expresses money: ``value = units * scale_factor / 10**decimal_places``.

    Taken from the peripheral's SETUP / READER CONFIG answer. ``currency`` is the
    machine's configured currency, which must match what the device reports.
    """

    scale_factor: int
    decimal_places: int
    currency: Currency

    def __post_init__(self) -> None:
        if self.scale_factor < 1:
            raise MoneyError(f"scale factor must be at least 1, got {self.scale_factor}")
        if not 0 <= self.decimal_places <= 9:
            raise MoneyError(f"decimal places out of range: {self.decimal_places}")

    def _ratio(self) -> tuple[int, int]:
        """Minor units per device unit as a fraction (numerator, denominator)."""
        shift = self.currency.minor_digits - self.decimal_places
        if shift >= 0:
            return self.scale_factor * 10**shift, 1
        return self.scale_factor, 10**-shift

    def to_money(self, units: int) -> Money:
        """Device units to money; raises if the device value is finer than a minor unit."""
        num, den = self._ratio()
        minor, rest = divmod(units * num, den)
        if rest:
            raise MoneyError(
                f"{units} units at scale {self.scale_factor}/10^{self.decimal_places} "
                f"is not a whole number of {self.currency} minor units"
            )
        return Money(minor, self.currency.code)

    def to_units(self, money: Money) -> int:
        """Money to device units; raises if the amount is not a multiple of the device's step."""
        if money.currency != self.currency.code:
            raise MoneyError(f"device works in {self.currency}, got {money.currency}")
        num, den = self._ratio()
        units, rest = divmod(money.minor * den, num)
        if rest:
            raise MoneyError(f"{money} is not a multiple of this device's smallest unit")
        return units

    def representable(self, money: Money) -> bool:
        try:
            self.to_units(money)
        except MoneyError:
            return False
        return True
