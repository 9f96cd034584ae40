"""What a noisy wire does to the in-memory link's bytes: deterministic and seedable.

The in-memory link serialises 9-bit words two bytes each (data byte, then 0/1 for
the mode bit) and passes every transmission through a :class:`FaultHook` before the
other side reads it. The hook can split a transmission into chunks, delay a chunk,
drop a chunk, corrupt one word, or swallow the VMC's ACK. Every behaviour takes a
direction, a probability, an optional ``times`` ("the next N transmissions only")
and an optional ``only`` (commands, answers, or the VMC's ACK/RET/NAK), so a test
can script exactly one fault or let a seeded random stream run.

Corruption acts on one serialised byte: at an even offset it flips data bits of that
word (XOR with ``xor`` or a random non-zero mask), at an odd offset it flips the
word's mode bit. Either way the other side sees a different but well-formed word,
as a real UART would after line noise.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from dataclasses import dataclass
from typing import Literal, Self

from protocols.mdb.wire import ACK

Direction = Literal["to_peripheral", "to_vmc"]
DIRECTIONS: tuple[Direction, ...] = ("to_peripheral", "to_vmc")


class Transmission(enum.Enum):
    """What is on the wire: a VMC command, a peripheral answer, or the VMC's ACK/RET/NAK."""

    COMMAND = "command"
    ANSWER = "answer"
    RESPONSE = "response"


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes that arrive together, ``delay`` seconds after the previous chunk."""

    data: bytes
    delay: float = 0.0


class _Kind(enum.Enum):
    SPLIT = "split"
    DELAY = "delay"
    DROP = "drop"
    CORRUPT = "corrupt"
    LOSE_ACK = "lose_ack"


@dataclass(slots=True)
class _Rule:
    kind: _Kind
    direction: Direction | None
    probability: float
    times: int | None
    seconds: float = 0.0
    offset: int | None = None
    xor: int | None = None
    only: Transmission | None = None

    def matches(self, direction: Direction, what: Transmission) -> bool:
        return self.times != 0 and self.direction in (None, direction) and self.only in (None, what)


class FaultHook:
    """Applies the configured faults to each transmission, in a reproducible order."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - reproducible faults, not secrets
        self._rules: list[_Rule] = []
        self.log: deque[str] = deque(maxlen=1000)  # what was done, for readable failures

    # --- configuration ------------------------------------------------------------

    def split(
        self,
        direction: Direction | None = None,
        *,
        probability: float = 1.0,
        times: int | None = None,
        only: Transmission | None = None,
    ) -> Self:
        """Cut transmissions into chunks at random points."""
        return self._add(_Rule(_Kind.SPLIT, direction, probability, times, only=only))

    def delay(
        self,
        seconds: float,
        direction: Direction | None = None,
        *,
        probability: float = 1.0,
        times: int | None = None,
        only: Transmission | None = None,
    ) -> Self:
        """Hold one chunk of a transmission back for ``seconds``."""
        if seconds < 0:
            raise ValueError(f"a delay cannot be negative ({seconds})")
        rule = _Rule(_Kind.DELAY, direction, probability, times, seconds=seconds, only=only)
        return self._add(rule)

    def drop(
        self,
        direction: Direction | None = None,
        *,
        probability: float = 1.0,
        times: int | None = None,
        only: Transmission | None = None,
    ) -> Self:
        """Lose one whole chunk (the whole transmission if it was not split)."""
        return self._add(_Rule(_Kind.DROP, direction, probability, times, only=only))

    def corrupt(
        self,
        direction: Direction | None = None,
        *,
        probability: float = 1.0,
        times: int | None = None,
        offset: int | None = None,
        xor: int | None = None,
        only: Transmission | None = None,
    ) -> Self:
        """Damage one word; ``offset`` picks the serialised byte (default: random)."""
        if xor is not None and not 1 <= xor <= 0xFF:
            raise ValueError(f"xor mask must be 1..255, not {xor}")
        if offset is not None and offset < 0:
            raise ValueError(f"offset cannot be negative ({offset})")
        rule = _Rule(
            _Kind.CORRUPT, direction, probability, times, offset=offset, xor=xor, only=only
        )
        return self._add(rule)

    def lose_acks(self, *, probability: float = 1.0, times: int | None = None) -> Self:
        """The VMC's ACK to peripheral data never reaches the peripheral."""
        rule = _Rule(
            _Kind.LOSE_ACK, "to_peripheral", probability, times, only=Transmission.RESPONSE
        )
        return self._add(rule)

    def clear(self) -> None:
        self._rules.clear()

    def _add(self, rule: _Rule) -> Self:
        if not 0.0 <= rule.probability <= 1.0:
            raise ValueError(f"probability must be within 0..1, not {rule.probability}")
        if rule.times is not None and rule.times < 0:
            raise ValueError(f"times cannot be negative ({rule.times})")
        self._rules.append(rule)
        return self

    # --- use by the link ----------------------------------------------------------

    def carry(self, data: bytes, direction: Direction, what: Transmission) -> list[Chunk]:
        """The chunks that arrive on the far side for one transmission of ``data``."""
        if not data:
            return []
        if (
            what is Transmission.RESPONSE
            and data[0] == ACK
            and self._fires(_Kind.LOSE_ACK, direction, what)
        ):
            self.log.append(f"{direction}: ACK lost")
            return []
        buf = bytearray(data)
        for rule in self._firing(_Kind.CORRUPT, direction, what):
            self._corrupt(buf, rule, direction)
        chunks = [bytes(buf)]
        if self._fires(_Kind.SPLIT, direction, what):
            chunks = self._split(chunks[0])
        for _ in self._firing(_Kind.DROP, direction, what):
            if chunks:
                lost = chunks.pop(self._rng.randrange(len(chunks)))
                self.log.append(f"{direction}: dropped {lost.hex()}")
        timed = [Chunk(c) for c in chunks]
        for rule in self._firing(_Kind.DELAY, direction, what):
            if timed:
                i = self._rng.randrange(len(timed))
                timed[i] = Chunk(timed[i].data, timed[i].delay + rule.seconds)
                self.log.append(f"{direction}: chunk {i} delayed {rule.seconds} s")
        return timed

    def _firing(self, kind: _Kind, direction: Direction, what: Transmission) -> list[_Rule]:
        # _roll has side effects (counts down "times"), so it runs only for matching rules.
        return [
            r
            for r in self._rules
            if r.kind is kind and r.matches(direction, what) and self._roll(r)
        ]

    def _fires(self, kind: _Kind, direction: Direction, what: Transmission) -> bool:
        return bool(self._firing(kind, direction, what))

    def _roll(self, rule: _Rule) -> bool:
        # Draw only for partial probabilities, so adding a certain fault does not
        # shift the random stream that other faults see.
        hit = rule.probability >= 1.0 or self._rng.random() < rule.probability
        if hit and rule.times is not None:
            rule.times -= 1
        return hit

    def _corrupt(self, buf: bytearray, rule: _Rule, direction: Direction) -> None:
        i = rule.offset if rule.offset is not None else self._rng.randrange(len(buf))
        i = min(i, len(buf) - 1)
        if i % 2:
            buf[i] ^= 0x01  # the mode-bit byte: flip the mode bit, keep the word well-formed
        else:
            buf[i] ^= rule.xor if rule.xor is not None else self._rng.randrange(1, 0x100)
        self.log.append(f"{direction}: corrupted byte {i}")

    def _split(self, data: bytes) -> list[bytes]:
        if len(data) < 2:
            return [data]
        cuts = sorted(self._rng.sample(range(1, len(data)), self._rng.randrange(1, len(data))))
        return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
