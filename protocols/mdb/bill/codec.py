"""The bill validator's :class:`~protocols.mdb.message.DeviceCodec`: blocks <-> messages.

Used by the trace decoder, the simulator (which must know each command's length to
find the checksum on a 9-bit link) and the VMC state machine.
"""

from __future__ import annotations

from protocols.mdb.bill.messages import (
    ADDRESS,
    BILL_TYPE,
    ESCROW,
    EXPANSION,
    POLL,
    RESET,
    SECURITY,
    SETUP,
    STACKER,
    SUB_FEATURE_ENABLE,
    SUB_ID_L1,
    SUB_ID_L2,
    BillType,
    Escrow,
    ExpansionRaw,
    FeatureEnable,
    IdentificationL1,
    IdentificationL2,
    Poll,
    RawAnswer,
    Reset,
    Security,
    Setup,
    Stacker,
    decode_identification,
    decode_poll,
    decode_setup,
    decode_stacker,
)
from protocols.mdb.errors import DecodeError
from protocols.mdb.message import Answer, Command, bits, u16, u32

# Data bytes after the address byte, for the commands whose length is fixed.
_DATA_LENGTH = {RESET: 0, SETUP: 0, SECURITY: 2, POLL: 0, BILL_TYPE: 4, ESCROW: 1, STACKER: 0}

# Data bytes after "37 sub". Recycler and file transfer lengths are from memory of
# the 4.2 tables [mem]. Sub-commands not listed (FTL SEND BLOCK, diagnostics) have
# variable length; we guess none, and the next mode-bit word resynchronises a reader.
_EXPANSION_DATA = {
    SUB_ID_L1: 0,
    SUB_FEATURE_ENABLE: 4,
    SUB_ID_L2: 0,
    0x03: 0,  # recycler setup
    0x04: 18,  # recycler enable: manual dispense bits + one byte per bill type
    0x05: 0,  # bill dispense status
    0x06: 3,  # dispense bill: type + count
    0x07: 2,  # dispense value
    0x08: 0,  # payout status
    0x09: 0,  # payout value poll
    0x0A: 0,  # payout cancel
    0xFA: 5,  # FTL request to receive
    0xFB: 3,  # FTL retry / deny
    0xFD: 2,  # FTL OK to send
    0xFE: 5,  # FTL request to send
}

_PLAIN: dict[int, Command] = {RESET: Reset(), SETUP: Setup(), POLL: Poll(), STACKER: Stacker()}


class BillValidatorCodec:
    """Reads and writes bill validator blocks; every failure is a :class:`DecodeError`."""

    name = "bill"
    addresses: tuple[int, ...] = (ADDRESS,)

    def command_length(self, prefix: bytes) -> int | None:
        if not prefix:
            return None
        offset = prefix[0] & 0x07
        if offset != EXPANSION:
            return 1 + _DATA_LENGTH[offset]
        if len(prefix) < 2:
            return None
        return 2 + _EXPANSION_DATA.get(prefix[1], 0)

    def decode_command(self, block: bytes) -> Command:
        if not block:
            raise DecodeError("empty command block")
        if block[0] & 0xF8 != ADDRESS:
            raise DecodeError(f"address byte {block[0]:#04x} is not the bill validator's")
        offset, data = block[0] & 0x07, block[1:]
        if offset == EXPANSION:
            return _decode_expansion(data)
        want = _DATA_LENGTH[offset]
        if len(data) != want:
            raise DecodeError(f"command {block[0]:#04x} carries {want} data bytes, got {len(data)}")
        if offset in _PLAIN:
            return _PLAIN[offset]
        if offset == SECURITY:
            return Security(bits(u16(data, 0)))
        if offset == BILL_TYPE:
            return BillType(bits(u16(data, 0)), bits(u16(data, 2)))
        if data[0] > 1:
            raise DecodeError(f"ESCROW must be 00 (return) or 01 (stack), got {data[0]:#04x}")
        return Escrow(stack=data[0] == 1)

    def decode_answer(self, command: Command, payload: bytes) -> Answer:
        if isinstance(command, Poll):
            return decode_poll(payload)
        if isinstance(command, Setup):
            return decode_setup(payload)
        if isinstance(command, Stacker):
            return decode_stacker(payload)
        if isinstance(command, IdentificationL1):
            return decode_identification(payload, with_features=False)
        if isinstance(command, IdentificationL2):
            return decode_identification(payload, with_features=True)
        if isinstance(command, ExpansionRaw):
            return RawAnswer(payload)
        if isinstance(command, Reset | Security | BillType | Escrow | FeatureEnable):
            raise DecodeError(f"{command.name} is answered with ACK, got data {payload.hex()}")
        raise DecodeError(f"{command.name} is not a bill validator command")


def _decode_expansion(data: bytes) -> Command:
    if not data:
        raise DecodeError("EXPANSION without a sub-command")
    sub, rest = data[0], data[1:]
    if sub in (SUB_ID_L1, SUB_ID_L2):
        if rest:
            raise DecodeError(f"identification request 37 {sub:02x} carries no data")
        return IdentificationL1() if sub == SUB_ID_L1 else IdentificationL2()
    if sub == SUB_FEATURE_ENABLE:
        if len(rest) != 4:
            raise DecodeError(f"FEATURE ENABLE carries 4 data bytes, got {len(rest)}")
        return FeatureEnable(u32(rest, 0))
    return ExpansionRaw(sub, bytes(rest))


BILL_VALIDATOR = BillValidatorCodec()
