"""DEX/UCS and EVA-DTS audit files: a tolerant reader, a writer and the G85 CRC-16/ARC.

``parse_dex(text)`` / ``parse_dex_bytes(data)`` return a :class:`DexFile` (every segment in
order, CRC and SE checks, warnings, typed views); ``write_dex(counters, ...)`` turns
:class:`AuditCounters` into a file; ``after_read`` gives the counters after a read.
"""

from __future__ import annotations

from protocols.dex.crc import crc16_arc
from protocols.dex.dexfile import CrcStatus, DexFile
from protocols.dex.errors import DexError
from protocols.dex.model import (
    AuditCounters,
    CashIn,
    CashlessDevice,
    CashOut,
    CoinTube,
    CurrencyInfo,
    DeviceId,
    Event,
    EventCount,
    Machine,
    ReadInfo,
    Segment,
    Selection,
    Tally,
    TubeFill,
)
from protocols.dex.reader import parse_dex, parse_dex_bytes
from protocols.dex.summary import summarize
from protocols.dex.writer import after_read, write_dex

__all__ = [
    "AuditCounters",
    "CashIn",
    "CashOut",
    "CashlessDevice",
    "CoinTube",
    "CrcStatus",
    "CurrencyInfo",
    "DeviceId",
    "DexError",
    "DexFile",
    "Event",
    "EventCount",
    "Machine",
    "ReadInfo",
    "Segment",
    "Selection",
    "Tally",
    "TubeFill",
    "after_read",
    "crc16_arc",
    "parse_dex",
    "parse_dex_bytes",
    "summarize",
    "write_dex",
]
