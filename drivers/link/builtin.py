"""Registers the link backends that ship with vendfleet (filled in by each backend)."""

from __future__ import annotations
