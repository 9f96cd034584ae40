"""The MDB stack's own error types. Garbage on the wire raises these and nothing else."""

from __future__ import annotations


class MdbError(Exception):
    """Base of every error the MDB protocol code raises on bad input."""


class FrameError(MdbError):
    """A block that breaks the wire rules: bad checksum, too long, stray mode bit."""


class DecodeError(MdbError):
    """A well-framed block whose content does not match the command or response table."""


class TraceError(MdbError):
    """A trace file line that cannot be read."""

    def __init__(self, message: str, line_number: int | None = None) -> None:
        self.line_number = line_number
        prefix = f"line {line_number}: " if line_number is not None else ""
        super().__init__(prefix + message)
