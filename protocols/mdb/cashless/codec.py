"""The cashless codec: what traces, simulators and the state machine use to read blocks.

A reader's monetary fields are 16-bit until the VMC enables the Level-3 "32-bit
monetary format" option, then 32-bit ("expanded currency mode"). The codec is
therefore made for one mode; :data:`CASHLESS` reads the normal form and
:data:`CASHLESS_EXPANDED` the expanded one.
"""

from __future__ import annotations

from protocols.mdb.cashless.answers import PollAnswer, read_answer
from protocols.mdb.cashless.commands import ADDRESSES, command_length, read_command
from protocols.mdb.message import Command


class CashlessCodec:
    """Blocks of cashless readers #1 (0x10) and #2 (0x60) in one currency mode."""

    name: str = "cashless"

    def __init__(self, expanded: bool = False) -> None:
        self.expanded = expanded
        self.addresses: tuple[int, ...] = ADDRESSES

    def __repr__(self) -> str:
        return f"CashlessCodec(expanded={self.expanded})"

    def command_length(self, prefix: bytes) -> int | None:
        return command_length(prefix, self.expanded)

    def decode_command(self, block: bytes) -> Command:
        return read_command(block)

    def decode_answer(self, command: Command, payload: bytes) -> PollAnswer:
        """Every cashless answer is a list of POLL items, whichever command it answers.

        Readers may answer SETUP with READER CONFIG, REQUEST ID with PERIPHERAL ID or
        VEND CANCEL with VEND DENIED directly, or deliver the same items on a later POLL.
        """
        return read_answer(payload, self.expanded)


CASHLESS = CashlessCodec()
CASHLESS_EXPANDED = CashlessCodec(expanded=True)
