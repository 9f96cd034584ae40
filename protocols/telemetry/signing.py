"""Signing and checking commands: HMAC-SHA256 with a per-machine key over canonical JSON.

The recipe (also in docs/telemetry.md, so other implementations can follow it):

1. Take the command as a JSON object and remove ``sig``.
2. Serialise it with keys sorted at every level, no whitespace (``","`` and ``":"``
   separators), non-ASCII characters written as themselves, encoded as UTF-8.
   Timestamps are strings ``YYYY-MM-DDTHH:MM:SSZ``; money and counts are integers.
3. HMAC-SHA256 those bytes with the machine's key; ``sig`` is ``hmac-sha256:`` followed by
   the 64 lowercase hex digits of the MAC.

The algorithm prefix leaves room for Ed25519 later; a verifier only accepts the algorithm
its key is for, so a prefix can never downgrade the check.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from protocols.telemetry.bodies_ops import AckOutcome
from protocols.telemetry.commands import CommandEnvelope
from protocols.telemetry.errors import TelemetryError
from protocols.telemetry.replay import ReplayGuard

SIG_PREFIX = "hmac-sha256:"
MIN_KEY_BYTES = 16
MAX_LIFETIME = timedelta(days=7)  # bounds how long the replay guard must remember an id
MAX_CLOCK_SKEW = timedelta(minutes=10)

C = TypeVar("C", bound=CommandEnvelope)


class VerdictOutcome(enum.StrEnum):
    OK = "ok"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    BAD_SIGNATURE = "bad_signature"
    WRONG_MACHINE = "wrong_machine"
    REJECTED = "rejected"  # authentic but unacceptable (lifetime, clock, guard full)


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: VerdictOutcome
    reason: str

    @property
    def ok(self) -> bool:
        return self.outcome is VerdictOutcome.OK

    @property
    def ack_outcome(self) -> AckOutcome | None:
        """The ack to send for a refused command; None when the command may be applied."""
        return None if self.ok else AckOutcome(self.outcome.value)


def canonical_json(document: dict[str, Any]) -> bytes:
    try:
        text = json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TelemetryError(f"command cannot be put in canonical form: {exc}") from None


def signing_bytes(cmd: CommandEnvelope) -> bytes:
    """The exact bytes the signature covers: every field but ``sig``, in canonical form."""
    document = cmd.wire_document()
    document.pop("sig", None)
    return canonical_json(document)


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise TelemetryError(f"signing key must be at least {MIN_KEY_BYTES} bytes")


def _mac(data: bytes, key: bytes) -> str:
    _check_key(key)
    return SIG_PREFIX + hmac.new(key, data, hashlib.sha256).hexdigest()


def sign(cmd: C, key: bytes) -> C:
    """The same command with ``sig`` set (any previous signature is replaced)."""
    return cmd.model_copy(update={"sig": _mac(signing_bytes(cmd), key)})


def verify(
    cmd: CommandEnvelope,
    *,
    key: bytes,
    machine_id: str,
    now: datetime,
    guard: ReplayGuard,
    max_skew: timedelta = MAX_CLOCK_SKEW,
) -> Verdict:
    """Decide whether this machine may apply ``cmd``; an accepted id is added to ``guard``.

    Checks in order: addressee, signature, expiry, lifetime and clock, replay. The
    signature comes before anything that depends on the command's own claims.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise TelemetryError("now must be timezone-aware")
    _check_key(key)
    if cmd.machine_id != machine_id:
        return _no(VerdictOutcome.WRONG_MACHINE, f"command is for {cmd.machine_id!r}")
    try:
        expected = _mac(signing_bytes(cmd), key)
    except TelemetryError as exc:
        return _no(VerdictOutcome.BAD_SIGNATURE, exc.reason)
    if not cmd.sig.startswith(SIG_PREFIX):
        return _no(VerdictOutcome.BAD_SIGNATURE, f"signature must start with {SIG_PREFIX!r}")
    if not hmac.compare_digest(cmd.sig.encode("utf-8", "replace"), expected.encode("ascii")):
        return _no(VerdictOutcome.BAD_SIGNATURE, "signature does not match")
    if now >= cmd.expires_at:
        return _no(VerdictOutcome.EXPIRED, f"expired at {cmd.expires_at.isoformat()}")
    if cmd.expires_at - cmd.issued_at > MAX_LIFETIME:
        return _no(VerdictOutcome.REJECTED, f"valid for longer than {MAX_LIFETIME}")
    if cmd.issued_at > now + max_skew:
        ahead = cmd.issued_at - now
        return _no(VerdictOutcome.REJECTED, f"issued {ahead} ahead of this machine's clock")
    guard.prune(now)
    if cmd.id in guard:
        return _no(VerdictOutcome.REPLAYED, f"command {cmd.id} was already accepted")
    if guard.full:
        return _no(VerdictOutcome.REJECTED, f"replay guard is full ({guard.capacity} commands)")
    guard.remember(cmd.id, cmd.expires_at)
    return Verdict(VerdictOutcome.OK, "")


def _no(outcome: VerdictOutcome, reason: str) -> Verdict:
    return Verdict(outcome, reason)
