"""A Qibixx-compatible MDB adapter in master mode, simulated: ASCII lines in, lines out.

Behind it sits a :class:`SimBus`. Like the real adapter, it frames the block,
collects the peripheral's answer and ACKs peripheral data itself, so the host only
sees ``p,ACK``, ``p,<hex>`` or ``p,NACK`` (grammar in
:mod:`drivers.link.qibixx_lines`). Sans-I/O: :meth:`QibixxAdapterSim.handle_line`
takes one line and ``now``; :class:`AdapterByteHandler` turns it into the
bytes-in/bytes-out handler that :func:`drivers.sim.pty.serve_pty` serves.

Commands: ``M,1``/``M,0`` (master mode on/off), ``R,<addr>[,<data>]``, ``R,RESET``
(bus reset: every peripheral resets, see :func:`drivers.sim.presets.bus_reset`;
answered ``p,ACK`` -- our choice, the link does not depend on it), ``V`` (version),
``X,1``/``X,0`` (sniffer). A malformed line gets ``e,<what is wrong>`` and the
simulator carries on.

Link faults (from the control socket or a fault script): ``slow`` delays every
answer, ``drop_answers`` loses the next N peripheral answers (the adapter reports
``p,NACK``; the peripheral has acted and keeps unACKed data), ``lose_acks`` loses
the adapter's ACK to the next N data answers (the host still gets the data; the
peripheral will send it again).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from drivers.link.qibixx_lines import (
    FROM_MASTER,
    FROM_SLAVE,
    SniffedBlock,
    format_sniff,
    parse_hex,
    ticks_at,
)
from drivers.sim.base import Silence, SimBus
from drivers.sim.presets import bus_reset, device_names
from protocols.mdb.errors import FrameError
from protocols.mdb.wire import MAX_DATA, Data

FIRMWARE_VERSION = "4.2.0.0"
MAX_LINE = 256  # longest R line is ~80 characters; anything longer is garbage


@dataclass(slots=True)
class LinkFaults:
    """Faults between the adapter and the peripherals. Counts of -1 mean "until cleared"."""

    slow_ms: float = 0.0
    drop_answers: int = 0
    lose_acks: int = 0


@dataclass(slots=True)
class AdapterCounters:
    requests: int = 0
    answers_dropped: int = 0
    acks_lost: int = 0
    errors: int = 0


class QibixxAdapterSim:
    """The adapter's firmware, one line at a time."""

    def __init__(self, bus: SimBus, version: str = FIRMWARE_VERSION) -> None:
        self.bus = bus
        self.version = version
        self.master = False
        self.sniffing = False
        self.faults = LinkFaults()
        self.counters = AdapterCounters()

    @property
    def delay(self) -> float:
        """Seconds the adapter takes before it answers (the ``slow`` fault)."""
        return self.faults.slow_ms / 1000.0

    def handle_line(self, line: str, now: float) -> list[str]:
        """Answer one line from the host (without its line ending)."""
        text = line.strip()
        if not text:
            return []
        head, _, rest = text.partition(",")
        if head == "M":
            return self._master_mode(rest)
        if head == "R":
            if rest == "RESET":
                return self._reset(now)
            return self._request(rest, now)
        if text == "V":
            return [f"v,{self.version},vendfleet-sim"]
        if head == "X":
            if rest not in ("0", "1"):
                return self.reject(f"sniffer mode must be X,0 or X,1, not {text!r}")
            self.sniffing = rest == "1"
            return ["x,ACK"]
        return self.reject(f"unknown command {text[:40]!r}")

    # --- commands -----------------------------------------------------------------

    def _master_mode(self, rest: str) -> list[str]:
        if rest not in ("0", "1"):
            return ["m,NACK"]
        self.master = rest == "1"
        return ["m,ACK"]

    def _reset(self, now: float) -> list[str]:
        if not self.master:
            return self.reject("master mode is off (send M,1 first)")
        bus_reset(self.bus, now)
        return ["p,ACK"]

    def _request(self, rest: str, now: float) -> list[str]:
        if not self.master:
            return self.reject("master mode is off (send M,1 first)")
        fields = rest.split(",")
        if len(fields[0]) != 2:
            return self.reject(f"address must be two hex digits, not {fields[0]!r}")
        try:
            block = b"".join(parse_hex(f) for f in fields)
        except FrameError as exc:
            return self.reject(str(exc))
        if len(block) > MAX_DATA:
            return self.reject(f"command of {len(block)} bytes exceeds {MAX_DATA}")
        self.counters.requests += 1
        lines = self._sniff(FROM_MASTER, now, block)
        answer = self.bus.handle(block, now)
        if isinstance(answer, Silence):
            return [*lines, "p,NACK"]
        payload = answer.payload if isinstance(answer, Data) else b""
        lines += self._sniff(FROM_SLAVE, now, payload)
        if self.faults.drop_answers:
            self.faults.drop_answers = _spend(self.faults.drop_answers)
            self.counters.answers_dropped += 1
            if payload:
                self.bus.acked(False)  # noqa: FBT003 - base signature is positional
            return [*lines, "p,NACK"]
        if not payload:
            return [*lines, "p,ACK"]
        ack_arrives = not self.faults.lose_acks
        if not ack_arrives:
            self.faults.lose_acks = _spend(self.faults.lose_acks)
            self.counters.acks_lost += 1
        self.bus.acked(ack_arrives)
        return [*lines, f"p,{payload.hex().upper()}"]

    def _sniff(self, status: int, now: float, data: bytes) -> list[str]:
        if not self.sniffing:
            return []
        return [format_sniff(SniffedBlock(status, ticks_at(now), data))]

    def reject(self, problem: str) -> list[str]:
        """The error line for a malformed request (counted, never raised)."""
        self.counters.errors += 1
        return [f"e,{problem}"]

    # --- control socket -----------------------------------------------------------

    def control(self, action: str, args: dict[str, object], now: float) -> dict[str, object]:
        """Adapter-level actions: status, slow, drop_answers, lose_acks, clear_faults, reset_bus."""
        if action == "status":
            return self.status()
        if action == "slow":
            self.faults.slow_ms = _number(args, "ms", minimum=0.0)
        elif action == "drop_answers":
            self.faults.drop_answers = _count(args)
        elif action == "lose_acks":
            self.faults.lose_acks = _count(args)
        elif action == "clear_faults":
            self.faults = LinkFaults()
        elif action == "reset_bus":
            return {"reset": bus_reset(self.bus, now)}
        else:
            raise ValueError(
                f"adapter has no action {action!r} (known: status, slow, drop_answers, "
                "lose_acks, clear_faults, reset_bus)"
            )
        return self.status()

    def status(self) -> dict[str, object]:
        return {
            "master": self.master,
            "sniffing": self.sniffing,
            "faults": asdict(self.faults),
            "counters": asdict(self.counters),
            "devices": sorted(device_names(self.bus)),
        }


def _spend(count: int) -> int:
    return count - 1 if count > 0 else count  # -1 stays: "until cleared"


def _number(args: dict[str, object], key: str, minimum: float) -> float:
    value = args.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ValueError(f"{key!r} must be a number >= {minimum}, not {value!r}")
    return float(value)


def _count(args: dict[str, object]) -> int:
    value = args.get("count", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        raise ValueError(f"'count' must be an integer >= 0 (-1: until cleared), not {value!r}")
    return value


class AdapterByteHandler:
    """Bytes from the host in, bytes back: buffers partial lines for ``serve_pty``.

    The ``slow`` fault is served by sleeping before the answer: the simulator
    process has nothing else to do while its adapter is busy, and a real slow
    adapter blocks its port the same way.
    """

    def __init__(self, sim: QibixxAdapterSim, sleep: Callable[[float], None] = time.sleep) -> None:
        self.sim = sim
        self._sleep = sleep
        self._buf = bytearray()

    def __call__(self, data: bytes, now: float) -> bytes:
        self._buf += data
        out: list[str] = []
        while (end := self._buf.find(b"\n")) >= 0:
            raw = bytes(self._buf[:end]).rstrip(b"\r")
            del self._buf[: end + 1]
            out += self._line(raw, now)
        if len(self._buf) > MAX_LINE:
            self._buf.clear()
            out += self.sim.reject(f"line longer than {MAX_LINE} characters discarded")
        if not out:
            return b""
        if self.sim.delay:
            self._sleep(self.sim.delay)
        return "".join(f"{line}\n" for line in out).encode("ascii")

    def _line(self, raw: bytes, now: float) -> list[str]:
        if len(raw) > MAX_LINE:
            return self.sim.reject(f"line longer than {MAX_LINE} characters discarded")
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            return self.sim.reject(f"line is not ASCII: {raw[:40].hex()}")
        return self.sim.handle_line(text, now)
