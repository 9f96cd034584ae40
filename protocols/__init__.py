"""Pure protocol code: bytes and documents in, typed values out.

No I/O, no asyncio, no clock reads, no randomness. Time is passed in as ``now``.
"""
