"""Reading the arguments of a control request (JSON from the control socket).

A wrong type raises :class:`TypeError` and a value out of range :class:`ValueError`,
both naming the argument; :func:`drivers.sim.control.answer_line` turns either
into an error answer for the caller.
"""

from __future__ import annotations

Args = dict[str, object]


def text_arg(args: Args, key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str):
        raise TypeError(f"{key!r} must be a string")
    return value


def flag_arg(args: Args, key: str) -> bool:
    value = args.get(key, False)
    if not isinstance(value, bool):
        raise TypeError(f"{key!r} must be true or false")
    return value


def count_arg(args: Args, key: str, default: int | None = None) -> int:
    """A whole number >= 0; without a ``default`` the argument is required."""
    value = args.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{key!r} must be an integer >= 0")
    return value


def number_arg(args: Args, key: str, default: float) -> float:
    value = args.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{key!r} must be a number >= 0")
    return float(value)


def index_arg(args: Args, key: str, size: int) -> int:
    """An index into ``size`` things (a motor, a shelf)."""
    value = args.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{key!r} must be an integer")
    if not 0 <= value < size:
        raise ValueError(f"{key} {value} outside 0..{size - 1}")
    return value
