"""Field types shared by every telemetry model: ids, money, counts and UTC timestamps.

Money is an integer number of minor units next to an ISO 4217 code. JSON has one number
type, so a float that sneaks in (``12000.5`` or even ``12000.0``) is refused by name
rather than rounded. Timestamps must carry a zone and are kept in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
)

MACHINE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_MACHINE_ID = re.compile(MACHINE_ID_PATTERN)
# Command ids are chosen by the fleet (a UUID in practice); the pattern keeps them
# printable and short enough to sit in a replay guard and an ack.
COMMAND_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{7,63}$"


class WireModel(BaseModel):
    """Base of every body and nested part: immutable; unknown (newer) fields are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


def is_machine_id(text: str) -> bool:
    return _MACHINE_ID.fullmatch(text) is not None


def _no_float(value: Any) -> Any:
    if isinstance(value, float):
        # ValueError, not TypeError: pydantic turns only ValueError into a field error.
        raise ValueError(  # noqa: TRY004
            f"must be an integer, not the float {value!r} (money is in minor units)"
        )
    return value


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def format_utc(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``; microseconds only when there are any."""
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


_WHOLE_SECONDS_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def _command_time_text(value: Any) -> Any:
    # Signed documents need one spelling per instant, so commands accept exactly one.
    if isinstance(value, str) and not _WHOLE_SECONDS_UTC.fullmatch(value):
        raise ValueError(
            f"must be written as YYYY-MM-DDTHH:MM:SSZ (UTC, whole seconds), got {value!r}"
        )
    return value


def _whole_seconds(value: datetime) -> datetime:
    if value.microsecond:
        raise ValueError("must be a whole number of seconds")
    return value


MachineId = Annotated[str, Field(pattern=MACHINE_ID_PATTERN)]
CommandId = Annotated[str, Field(pattern=COMMAND_ID_PATTERN)]
StrictInt = Annotated[int, BeforeValidator(_no_float), Strict()]
MinorUnits = Annotated[int, BeforeValidator(_no_float), Strict(), Field(ge=0)]
Count = Annotated[int, BeforeValidator(_no_float), Strict(), Field(ge=0)]
StrictBool = Annotated[bool, Strict()]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
SelectionCode = Annotated[str, Field(min_length=1, max_length=8)]
UtcTime = Annotated[
    AwareDatetime,
    AfterValidator(_utc),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
]
CommandTime = Annotated[
    AwareDatetime,
    BeforeValidator(_command_time_text),
    AfterValidator(_whole_seconds),
    AfterValidator(_utc),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
]
