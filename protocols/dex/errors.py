"""The DEX package's own error type: input that is not DEX at all, or a value the writer refuses."""

from __future__ import annotations


class DexError(ValueError):
    """Raised for input that is not a DEX/EVA-DTS audit file (empty, binary, no segments)
    and for counters the writer cannot put into a file (a '*' inside a text field).

    Everything else a real machine gets wrong (CRC, SE count, truncation) is a warning.
    """
