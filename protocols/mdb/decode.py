"""Turn trace blocks into named messages: the engine behind ``vend mdb decode``.

An answer is read in the light of the command it answers, so the decoder keeps the
last command seen on the bus (MDB is strictly master/slave: whatever a peripheral
says answers the VMC's last block).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocols.mdb.errors import MdbError, TraceError
from protocols.mdb.message import Command, Message
from protocols.mdb.registry import codec_for, device_name
from protocols.mdb.trace import ChecksumStatus, Direction, TraceBlock

# Level-3 cashless option bit: 32-bit monetary format ("expanded currency mode").
_EXPANDED_CURRENCY_BIT = 0x02


@dataclass(frozen=True, slots=True)
class DecodedBlock:
    """One decoded line of a trace, ready for a table or a JSON line."""

    line: int
    direction: str
    device: str
    message: str | None
    fields: dict[str, object]
    checksum: str
    raw: str
    error: str | None = None
    timestamp: float | None = None

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "line": self.line,
            "direction": self.direction,
            "device": self.device,
            "message": self.message,
            "fields": self.fields,
            "checksum": self.checksum,
            "raw": self.raw,
        }
        if self.error is not None:
            out["error"] = self.error
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp
        return out


@dataclass
class TraceDecoder:
    """Stateful decoder: remembers the command in flight and per-reader currency mode."""

    _last: tuple[int, Command | None] | None = None
    _expanded: set[int] = field(default_factory=set)

    def decode(self, block: TraceBlock) -> DecodedBlock:
        if block.control is not None:
            device = device_name(self._last[0]) if self._last else "bus"
            return self._out(block, device, block.control.value, {})
        if block.direction is Direction.VMC_TO_PERIPHERAL:
            return self._command(block)
        return self._answer(block)

    def error(self, exc: TraceError) -> DecodedBlock:
        return DecodedBlock(
            line=exc.line_number or 0,
            direction="?",
            device="?",
            message=None,
            fields={},
            checksum=ChecksumStatus.ABSENT.value,
            raw="",
            error=str(exc),
        )

    def _command(self, block: TraceBlock) -> DecodedBlock:
        address = block.data[0]
        base = address & 0xF8
        device = device_name(address)
        self._last = (base, None)
        if block.checksum is ChecksumStatus.BAD:
            return self._out(block, device, None, {}, "checksum mismatch: not decoded")
        codec = codec_for(address, expanded_currency=base in self._expanded)
        if codec is None:
            return self._out(block, device, None, {}, "no codec for this address")
        try:
            command = codec.decode_command(block.data)
        except MdbError as exc:
            return self._out(block, device, None, {}, str(exc))
        self._last = (base, command)
        self._note_currency_mode(base, command)
        return self._out(block, device, command.name, command.describe())

    def _answer(self, block: TraceBlock) -> DecodedBlock:
        if self._last is None:
            return self._out(block, "?", None, {}, "answer without a preceding command")
        base, command = self._last
        device = device_name(base)
        if block.checksum is ChecksumStatus.BAD:
            return self._out(block, device, None, {}, "checksum mismatch: not decoded")
        codec = codec_for(base, expanded_currency=base in self._expanded)
        if codec is None or command is None:
            return self._out(block, device, None, {}, "answer to a command that was not decoded")
        try:
            answer: Message = codec.decode_answer(command, block.data)
        except MdbError as exc:
            return self._out(block, device, None, {}, str(exc))
        return self._out(block, device, answer.name, answer.describe())

    def _note_currency_mode(self, base: int, command: Command) -> None:
        if base in (0x10, 0x60) and command.name == "OptionalFeatureEnabled":
            features = command.describe().get("features")
            if isinstance(features, int) and features & _EXPANDED_CURRENCY_BIT:
                self._expanded.add(base)
        if base in (0x10, 0x60) and command.name == "Reset":
            self._expanded.discard(base)

    @staticmethod
    def _out(
        block: TraceBlock,
        device: str,
        message: str | None,
        fields: dict[str, object],
        error: str | None = None,
    ) -> DecodedBlock:
        return DecodedBlock(
            line=block.line,
            direction=block.direction.value,
            device=device,
            message=message,
            fields=fields,
            checksum=block.checksum.value,
            raw=block.data.hex(),
            error=error,
            timestamp=block.timestamp,
        )
