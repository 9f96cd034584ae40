"""Receipt identity, idempotency keys, document checks, backoff, and the HTTP answer
reader fed garbage."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.einvoice import ReceiptError, ReceiptKey, ReceiptKind, RetryPolicy, idempotency_key
from fleet.einvoice.http_client import HttpError, HttpResponse, read_response
from tests.fleet.einvoice.support import key, outgoing

tokens = st.text(
    st.characters(codec="utf-8", exclude_characters="/", exclude_categories=("C", "Z")),
    min_size=1,
    max_size=12,
)


@settings(max_examples=100)
@given(tokens, st.one_of(st.just(""), tokens), tokens)
def test_key_text_round_trips(machine: str, series: str, number: str) -> None:
    k = ReceiptKey(machine, series, number)
    assert ReceiptKey.parse(str(k)) == k


def test_idempotency_keys_are_pinned_and_distinct() -> None:
    # Pinned: a changed derivation would make every queued receipt look new to providers.
    # sha256 over length-prefixed (4 bytes, big-endian) UTF-8 fields, first 40 hex digits.
    fields = b"".join(
        len(f).to_bytes(4, "big") + f for f in (b"vm-0001", b"1C26MAA", b"42", b"original")
    )
    assert hashlib.sha256(fields).hexdigest()[:40] == "838ac30d2470a60bfbad1ae6caa97470fd6f35a9"
    pinned = "rcpt-838ac30d2470a60bfbad1ae6caa97470fd6f35a9"
    assert idempotency_key(ReceiptKey("vm-0001", "1C26MAA", "42"), ReceiptKind.ORIGINAL) == pinned
    keys = {
        idempotency_key(ReceiptKey("vm-0001", "1C26MAA", "42"), kind) for kind in ReceiptKind
    } | {
        idempotency_key(ReceiptKey("vm-0001", "1C26MA", "A42"), ReceiptKind.ORIGINAL),
        idempotency_key(ReceiptKey("vm-00011", "C26MAA", "42"), ReceiptKind.ORIGINAL),
    }
    assert len(keys) == 5
    assert all(k.isascii() and len(k) <= 64 for k in keys)


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("C25TAA-0001207", ReceiptKey("vm-1", "C25TAA", "0001207")),
        ("A-B-17", ReceiptKey("vm-1", "A-B", "17")),
        (" 0042 ", ReceiptKey("vm-1", "", "0042")),
    ],
)
def test_receipt_numbers_from_the_machine(number: str, expected: ReceiptKey) -> None:
    assert ReceiptKey.from_receipt_number("vm-1", number) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vm-1/C26", "machine/series/number"),
        ("vm-1/C26/1/2", "machine/series/number"),
        ("vm-1/C26/", "needs a machine id and a number"),
        ("vm-1/C 26 /1", "printable token"),
        ("vm-1/C26/1\n", "printable token"),
    ],
)
def test_bad_keys_are_named(text: str, message: str) -> None:
    with pytest.raises(ReceiptError, match=message):
        ReceiptKey.parse(text)


def test_documents_are_checked() -> None:
    good = outgoing(1)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": ReceiptKind.REPLACEMENT}, "must name the receipt it corrects"),
        ({"original": key(9)}, "must not name"),
        ({"kind": ReceiptKind.ADJUSTMENT, "original": key(1)}, "cannot correct itself"),
        ({"xml": b""}, "empty"),
        ({"total": 1.5}, "integer minor units"),
        ({"total": True}, "integer minor units"),
        ({"currency": "dong"}, "ISO 4217"),
        ({"issued_at": datetime(2026, 3, 1)}, "time zone"),  # noqa: DTZ001
    ]
    for changes, message in cases:
        with pytest.raises(ReceiptError, match=message):
            replace(good, **changes)


@settings(max_examples=150)
@given(
    base=st.integers(1, 600),
    cap_factor=st.integers(1, 1000),
    attempts=st.integers(1, 200),
    seed=st.integers(0, 2**32),
)
def test_backoff_grows_is_capped_and_jittered_within_bounds(
    base: int, cap_factor: int, attempts: int, seed: int
) -> None:
    policy = RetryPolicy(base=timedelta(seconds=base), cap=timedelta(seconds=base * cap_factor))
    rng = random.Random(seed)
    ceiling = timedelta(seconds=min(base * cap_factor, base * 2.0 ** (attempts - 1)))
    delay = policy.delay(attempts, rng)
    assert ceiling / 2 <= delay <= ceiling
    assert policy.delay(attempts + 1, rng) >= ceiling / 2


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="base <= cap"):
        RetryPolicy(base=timedelta(seconds=10), cap=timedelta(seconds=5))
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def _parse(data: bytes) -> HttpResponse:
    async def run() -> HttpResponse:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_response(reader, 1024)

    return asyncio.run(run())


@settings(max_examples=150)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda status, head, body: b"HTTP/1.1 " + status + b" X\r\n" + head + b"\r\n" + body,
            st.sampled_from([b"200", b"20", b"2x0", b"100", b"409"]),
            st.sampled_from(
                [
                    b"",
                    b"Content-Length: 5\r\n",
                    b"Content-Length: -1\r\n",
                    b"Content-Length: 1_0\r\n",
                    b"Transfer-Encoding: chunked\r\n",
                    b"Content-Length: 99999\r\n",
                    b"bad line\r\n",
                ]
            ),
            st.binary(max_size=40),
        ),
    )
)
def test_garbage_answers_raise_only_http_error(data: bytes) -> None:
    with contextlib.suppress(HttpError):
        _parse(data)


def test_a_chunked_answer_with_trailers_is_read() -> None:
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: 1\r\n\r\n"
    )
    response = _parse(data)
    assert response.status == 201
    assert response.body == b"abcde"
