"""CRC-16/ARC, the check carried in the G85 segment and used by the DEX/UCS link layer.

Parameters: polynomial 0x8005 reflected (0xA001 shifting right), initial value 0, no final
XOR; the check value of b"123456789" is 0xBB3D.
"""

from __future__ import annotations


def _byte_table() -> tuple[int, ...]:
    table = []
    for value in range(256):
        crc = value
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_BYTE = _byte_table()


_REFLECT = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def _reflect16(value: int) -> int:
    return int(f"{value:016b}"[::-1], 2)


def crc16_arc(data: bytes, crc: int = 0) -> int:
    """Return the CRC-16/ARC of ``data``, continuing from ``crc`` (0 for a fresh start).

    A Python loop costs per byte, so this works on the whole message as one big integer:
    the CRC is M(x)*x^16 mod P(x) with P = x^16+x^15+x^2+1 = (x+1)(x^15+x+1) over GF(2),
    taken on the bit-reflected message. Modulo the trinomial T = x^15+x+1,
    x^(15*2^k) = (x+1)^(2^k) = x^(2^k)+1, so the high part folds onto the low part with two
    shifts and XORs, halving the length each round; modulo (x+1) the remainder is the
    parity of the bits. The two remainders combine into the one modulo P (Chinese
    remainder theorem: adding T flips the parity since T has three terms).
    """
    if crc:
        return crc16_arc_bytewise(data, crc)
    a = int.from_bytes(data.translate(_REFLECT), "big") << 16
    parity = a.bit_count() & 1
    length = a.bit_length()
    while length > 30:
        step = 1 << max(0, (length // 30).bit_length() - 1)
        split = 15 * step
        high = a >> split
        a = (high << step) ^ high ^ (a ^ (high << split))
        length = a.bit_length()
    while length > 15:
        high = a >> 15
        a = (high << 1) ^ high ^ (a & 0x7FFF)
        length = a.bit_length()
    if a.bit_count() & 1 != parity:
        a ^= 0x8003
    return _reflect16(a)


def crc16_arc_bytewise(data: bytes, crc: int = 0) -> int:
    """The same CRC one byte at a time (the textbook table form), continuing from ``crc``."""
    for byte in data:
        crc = (crc >> 8) ^ _BYTE[(crc ^ byte) & 0xFF]
    return crc


def dex_bytes(text: str) -> bytes:
    """The bytes a CRC is taken over: Latin-1 (byte for byte what was read), or UTF-8 for
    text that cannot have come from Latin-1 (a file decoded as UTF-8 before it reached us)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")
