"""Errors of the shared framing. A protocol's own errors live in its own package."""

from __future__ import annotations


class FrameError(Exception):
    """Bytes that break the frame rules: no start byte, bad length, bad checksum."""
