"""The provider behind an HTTP API: POST the receipt XML, read a JSON answer.

The contract (one endpoint, ``POST {base}/receipts``), which an adapter per commercial
provider can map onto:

* request: the document as ``application/xml``, headers ``Idempotency-Key`` (stable per
  receipt and kind), ``X-Receipt-Key`` (``machine/series/number``, percent-encoded),
  ``X-Receipt-Kind`` and, for corrections, ``X-Original-Key`` / ``X-Original-Reference``;
* ``2xx`` with ``{"reference": "..."}``: accepted;
* ``409`` with ``{"reference": "..."}``: the provider already holds this idempotency key
  (an earlier attempt arrived but its answer was lost): accepted, the existing reference;
* ``408``, ``425``, ``429``, ``5xx``, timeouts, refused or dropped connections and
  garbled answers: retry later (``Retry-After`` seconds are passed on);
* any other ``4xx`` (``409`` without a reference included): rejected, permanently.
"""

from __future__ import annotations

import json
import ssl
from typing import Any
from urllib.parse import quote

from fleet.einvoice.http_client import HttpError, HttpResponse, parse_endpoint, post
from fleet.einvoice.provider import Accepted, ProviderResult, Rejected, RetryLater, Submission

RETRYABLE_4XX = frozenset({408, 425, 429})
REASON_LIMIT = 300


class HttpProvider:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        name: str = "http",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("provider timeout must be positive")
        self._endpoint = parse_endpoint(base_url.rstrip("/") + "/receipts")
        self._token = token
        self._timeout = timeout
        self._name = name
        self._ssl = ssl_context

    @property
    def name(self) -> str:
        return self._name

    async def submit(self, submission: Submission) -> ProviderResult:
        try:
            response = await post(
                self._endpoint,
                submission.document,
                self._headers(submission),
                timeout=self._timeout,
                ssl_context=self._ssl,
            )
        except TimeoutError:
            return RetryLater(f"no answer within {self._timeout:g} s")
        except HttpError as exc:
            return RetryLater(str(exc))
        return interpret(response)

    def _headers(self, submission: Submission) -> dict[str, str]:
        headers = {
            "Content-Type": "application/xml; charset=utf-8",
            "Accept": "application/json",
            "Idempotency-Key": submission.idempotency_key,
            "X-Receipt-Key": quote(str(submission.key), safe="/"),
            "X-Receipt-Kind": submission.kind.value,
        }
        if submission.original is not None:
            headers["X-Original-Key"] = quote(str(submission.original), safe="/")
        if submission.original_ref is not None:
            headers["X-Original-Reference"] = quote(submission.original_ref, safe="")
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers


def interpret(response: HttpResponse) -> ProviderResult:
    """What an answer means for the queue (see the module docstring)."""
    status = response.status
    answer = _json(response.body)
    reference = answer.get("reference")
    has_ref = isinstance(reference, str) and bool(reference)
    if 200 <= status < 300:
        if has_ref:
            return Accepted(str(reference))
        # It may be stored; the retry's 409 will tell us its reference.
        return RetryLater(f"{status} without a reference")
    if status == 409 and has_ref:
        return Accepted(str(reference), duplicate=True)
    reason = _reason(response, answer)
    if status >= 500 or status in RETRYABLE_4XX:
        return RetryLater(reason, after=_retry_after(response))
    if 400 <= status < 500:
        return Rejected(reason, permanent=True)
    return RetryLater(f"unexpected answer {reason}")


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body.decode("utf-8")) if body else {}
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _reason(response: HttpResponse, answer: dict[str, Any]) -> str:
    detail = answer.get("error") or answer.get("detail") or answer.get("message")
    if not isinstance(detail, str):
        detail = response.body.decode("utf-8", "replace")
    text = f"{response.status} {response.reason}".strip()
    detail = " ".join(detail.split())
    return f"{text}: {detail}"[:REASON_LIMIT] if detail else text


def _retry_after(response: HttpResponse) -> float | None:
    value = response.headers.get("retry-after", "")
    # Seconds only (an HTTP date needs a clock read here); absurd values are ignored.
    return float(value) if value.isascii() and value.isdigit() and len(value) <= 7 else None
