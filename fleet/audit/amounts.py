"""Amounts and times as operators and processors write them, turned into exact integers.

``12000``, ``-12,50`` (with ``decimal_places=2`` and a comma separator), ``10000x40`` (a
denomination times a count) or a list of those: never a float on the way.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from fleet.audit.records import AuditError

_NUMBER = re.compile(r"^([+-]?)(\d+)(?:[.,](\d+))?$")
_ITEM = re.compile(r"^(\d+)\s*[xX*]\s*(\d+)$")


def parse_amount(text: str, decimal_places: int = 0, *, thousands: str = "") -> int:
    """A money amount in minor units; ``decimal_places`` is how the text writes it."""
    cleaned = text.strip().replace(" ", "").replace("\u00a0", "")
    if thousands:
        cleaned = cleaned.replace(thousands, "")
    match = _NUMBER.match(cleaned)
    if not match:
        raise AuditError(f"{text!r} is not an amount")
    sign, whole, fraction = match.groups()
    fraction = fraction or ""
    if len(fraction) > decimal_places:
        raise AuditError(
            f"{text!r} has {len(fraction)} decimals, the currency has {decimal_places}"
        )
    minor = int(whole) * 10**decimal_places + int(fraction.ljust(decimal_places, "0") or "0")
    result: int = -minor if sign == "-" else minor
    return result


def parse_cash(text: str) -> int:
    """A counted total (``1450000``) or denominations (``10000x40,20000x50``), minor units."""
    parts = [p for p in re.split(r"[,;+\s]+", text.strip()) if p]
    if not parts:
        raise AuditError("empty cash amount")
    if len(parts) == 1 and not _ITEM.match(parts[0]):
        value = parse_amount(parts[0])
        if value < 0:
            raise AuditError(f"{text!r}: cash cannot be negative")
        return value
    total = 0
    for part in parts:
        match = _ITEM.match(part)
        if not match:
            raise AuditError(f"{part!r}: expected DENOMINATIONxCOUNT, e.g. 10000x40")
        total += int(match.group(1)) * int(match.group(2))
    return total


def parse_time(text: str, fmt: str, timezone: str) -> datetime:
    """``fmt`` is ``iso`` or a strptime format; naive times are in ``timezone``."""
    try:
        value = (
            datetime.fromisoformat(text.strip())
            if fmt == "iso"
            else datetime.strptime(text.strip(), fmt)  # noqa: DTZ007  (zone applied below)
        )
    except ValueError:
        raise AuditError(f"{text!r} is not a time ({fmt})") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(timezone))
    return value.astimezone(UTC)


def parse_date(text: str, fmt: str) -> date:
    try:
        if fmt == "iso":
            return date.fromisoformat(text.strip())
        return datetime.strptime(text.strip(), fmt).date()  # noqa: DTZ007  (a calendar date)
    except ValueError:
        raise AuditError(f"{text!r} is not a date ({fmt})") from None
