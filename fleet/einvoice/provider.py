"""The e-invoice provider interface: submit one document, learn what became of it.

A provider is whatever accepts fiscal documents on the operator's behalf: an e-invoice
service's API (``HttpProvider``) or, for installations without one, a folder
(``LocalProvider``). Outcomes are three, and the sender acts only on them:

* ``Accepted(ref)`` — the provider holds the document under ``ref``; also when it says it
  already had this idempotency key (``duplicate=True``), which is how an answer lost on
  the way back still ends accepted exactly once;
* ``Rejected(reason, permanent)`` — the provider refused the document; permanent means
  resending the same bytes can never succeed (schema, signature, tax code problems);
* ``RetryLater(reason, after)`` — nothing is known to have happened: timeouts, dropped
  connections, 5xx, throttling. ``after`` is the provider's hint in seconds, if any.

Providers never raise for these: a raised exception is a bug, and the sender records it
as a retryable error rather than losing the receipt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fleet.einvoice.receipt import ReceiptKey, ReceiptKind


@dataclass(frozen=True)
class Submission:
    """One document on its way out. For a replacement or adjustment, ``original`` is the
    receipt it corrects and ``original_ref`` the provider's reference for it (the sender
    only submits a correction once its original was accepted)."""

    idempotency_key: str
    key: ReceiptKey
    kind: ReceiptKind
    document: bytes
    original: ReceiptKey | None = None
    original_ref: str | None = None


@dataclass(frozen=True)
class Accepted:
    ref: str
    duplicate: bool = False


@dataclass(frozen=True)
class Rejected:
    reason: str
    permanent: bool = True


@dataclass(frozen=True)
class RetryLater:
    reason: str
    after: float | None = None


ProviderResult = Accepted | Rejected | RetryLater


class Provider(Protocol):
    """``name`` is recorded on each queue row with the outcome."""

    @property
    def name(self) -> str: ...

    async def submit(self, submission: Submission) -> ProviderResult: ...
