"""The one error type of :mod:`protocols.einvoice`: every problem names the field it is in."""

from __future__ import annotations

from pydantic import ValidationError


class EinvoiceError(ValueError):
    """A receipt, symbol or XML document that is not valid; ``field`` says where."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def where(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as a dotted path with list indexes: ``lines[0].amount``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "receipt"


def _split(field: str) -> list[int | str]:
    """``lines[0].amount`` -> ["lines", 0, "amount"]."""
    parts: list[int | str] = []
    for dotted in field.split("."):
        name, *indexes = dotted.replace("]", "").split("[")
        parts.append(name)
        parts += [int(k) for k in indexes]
    return parts


def from_validation(exc: ValidationError, prefix: str = "") -> EinvoiceError:
    """The first problem of a pydantic error, as an :class:`EinvoiceError`."""
    first = exc.errors()[0]
    loc = tuple(first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    inner = first.get("ctx", {}).get("error")
    if isinstance(inner, EinvoiceError):  # raised by our own validator: it knows the field
        parts = _split(inner.field)
        if loc and loc[-1] == parts[0]:  # a field validator names its own field again
            loc = loc[:-1]
        loc, message = (*loc, *parts), inner.problem
    path = where(loc)
    if prefix:
        path = prefix if path == "receipt" else f"{prefix}.{path}"
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return EinvoiceError(path, message)
