"""Field-level reading rules shared by the typed views: numbers, sentinels, dates and times.

Real files leave fields empty, pad them with spaces, cut segments short and write
"not available" as 2^32-1 (Jofemar PA7 rows) or a run of nines. All of that reads as
None here; nothing in this module raises.
"""

from __future__ import annotations

from datetime import date, datetime, time

# "Not available" markers met in real files: 2^32-1 in decimal and hex, and all-nines of
# eight digits or more (counters that never reach that width mean "no data").
_SENTINELS = frozenset({"4294967295", "FFFFFFFF", "ffffffff", "FFFF", "ffff"})


def number(text: str) -> int | None:
    """An integer field, or None when it is empty, a sentinel or not a number."""
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    if value == 4294967295:
        return None
    if value >= 99_999_999:
        digits = text.strip().lstrip("+")
        if digits.count("9") == len(digits):
            return None
    return value


def is_sentinel(text: str) -> bool:
    """True for the "not available" markers (kept apart so callers can count them)."""
    stripped = text.strip()
    return stripped in _SENTINELS or (len(stripped) >= 8 and stripped.count("9") == len(stripped))


def field(fields: tuple[str, ...], index: int) -> str:
    """Field ``index`` (the n of XX0n) or "" when the segment was cut short."""
    return fields[index] if index < len(fields) else ""


def int_field(fields: tuple[str, ...], index: int) -> int | None:
    return number(fields[index]) if index < len(fields) else None


def text_field(fields: tuple[str, ...], index: int) -> str:
    """A free-text field with the fixed-width padding real machines add stripped off."""
    return fields[index].strip() if index < len(fields) else ""


def parse_date(text: str) -> date | None:
    """YYMMDD or YYYYMMDD (both widths occur). Two-digit years pivot at 70: 69 is 2069."""
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        return None
    if len(text) == 6:
        yy = int(text[:2])
        year = 2000 + yy if yy < 70 else 1900 + yy
        month, day = int(text[2:4]), int(text[4:6])
    elif len(text) == 8:
        year, month, day = int(text[:4]), int(text[4:6]), int(text[6:8])
    else:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_time(text: str) -> time | None:
    """HHMM or HHMMSS."""
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text) not in (4, 6):
        return None
    hour, minute = int(text[:2]), int(text[2:4])
    second = int(text[4:6]) if len(text) == 6 else 0
    try:
        return time(hour, minute, second)
    except ValueError:
        return None


def parse_datetime(date_text: str, time_text: str) -> datetime | None:
    """A date field and a time field together; a missing time means midnight."""
    day = parse_date(date_text)
    if day is None:
        return None
    clock = parse_time(time_text) if time_text.strip() else time(0, 0)
    if clock is None:
        return None
    return datetime.combine(day, clock)


def format_date(moment: date) -> str:
    """YYMMDD, the width every reader understands (years 1970-2069)."""
    return f"{moment.year % 100:02d}{moment.month:02d}{moment.day:02d}"


def format_time(moment: time | datetime) -> str:
    """HHMM, or HHMMSS when the seconds are not zero."""
    if moment.second:
        return f"{moment.hour:02d}{moment.minute:02d}{moment.second:02d}"
    return f"{moment.hour:02d}{moment.minute:02d}"
