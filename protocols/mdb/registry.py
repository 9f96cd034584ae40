"""Which codec reads which MDB address. The trace decoder and the CLI look devices up here."""

from __future__ import annotations

from protocols.mdb.bill import BILL_VALIDATOR
from protocols.mdb.cashless import CASHLESS, CASHLESS_EXPANDED
from protocols.mdb.changer import CHANGER
from protocols.mdb.message import DeviceCodec

# Names of the standard addresses (spec section 2), for devices we have no codec for.
ADDRESS_NAMES = {
    0x00: "vmc",
    0x08: "changer",
    0x10: "cashless1",
    0x18: "gateway",
    0x20: "display",
    0x28: "energy",
    0x30: "bill",
    0x40: "usd1",
    0x48: "usd2",
    0x50: "usd3",
    0x58: "hopper1",
    0x60: "cashless2",
    0x68: "age_verification",
    0x70: "hopper2",
}

_CODECS: dict[int, DeviceCodec] = {
    0x08: CHANGER,
    0x30: BILL_VALIDATOR,
    0x10: CASHLESS,
    0x60: CASHLESS,
}


def device_name(address_byte: int) -> str:
    base = address_byte & 0xF8
    return ADDRESS_NAMES.get(base, f"addr_{base:02x}")


def codec_for(address_byte: int, *, expanded_currency: bool = False) -> DeviceCodec | None:
    """The codec for the device at ``address_byte`` (any of its 8 command codes)."""
    base = address_byte & 0xF8
    if expanded_currency and base in (0x10, 0x60):
        return CASHLESS_EXPANDED
    return _CODECS.get(base)
