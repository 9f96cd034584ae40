"""The HTTP provider against a real local HTTP server that fails, hangs, drops and
rejects: each answer maps to the right outcome, and nothing raises."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from fleet.einvoice import (
    Accepted,
    HttpProvider,
    ReceiptKey,
    ReceiptKind,
    Rejected,
    RetryLater,
    Submission,
)
from fleet.einvoice.http_client import HttpResponse, parse_endpoint
from fleet.einvoice.http_provider import interpret
from tests.fleet.einvoice.fake_provider import FakeProvider
from tests.support.servers import free_port

TIMEOUT = 0.5


def submission(number: int = 1, machine: str = "vm-0001") -> Submission:
    key = ReceiptKey(machine, "1C26MAA", str(number))
    return Submission(
        idempotency_key=f"rcpt-test-{machine}-{number}",
        key=key,
        kind=ReceiptKind.ORIGINAL,
        document=f"<HDon><SHDon>{number}</SHDon></HDon>".encode(),
    )


@pytest.fixture
async def server() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(hang_seconds=TIMEOUT * 6) as fake:
        yield fake


async def test_accepts_and_sends_the_document_with_its_idempotency_key(
    server: FakeProvider,
) -> None:
    provider = HttpProvider(server.url, timeout=TIMEOUT, token="secret")
    item = submission()
    result = await provider.submit(item)
    assert isinstance(result, Accepted)
    assert not result.duplicate
    stored = server.stored[item.idempotency_key]
    assert result.ref == stored.ref
    assert stored.document == item.document
    assert stored.receipt_key == "vm-0001/1C26MAA/1"
    assert stored.kind == "original"


async def test_a_second_send_is_a_duplicate_with_the_same_reference(server: FakeProvider) -> None:
    provider = HttpProvider(server.url, timeout=TIMEOUT)
    first = await provider.submit(submission())
    again = await provider.submit(submission())
    assert isinstance(first, Accepted)
    assert again == Accepted(first.ref, duplicate=True)
    assert server.records == {"vm-0001/1C26MAA/1": 1}


async def test_a_lost_answer_then_a_retry_ends_accepted_once(server: FakeProvider) -> None:
    provider = HttpProvider(server.url, timeout=TIMEOUT)
    item = submission()
    server.plan(item.idempotency_key, "drop")
    lost = await provider.submit(item)
    retried = await provider.submit(item)
    assert isinstance(lost, RetryLater)
    assert retried == Accepted(server.stored[item.idempotency_key].ref, duplicate=True)
    assert server.records == {"vm-0001/1C26MAA/1": 1}


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [("fail", "500"), ("hang", "no answer within"), ("garbage", "malformed status line")],
)
async def test_server_trouble_is_retry_later(
    server: FakeProvider, behaviour: str, reason: str
) -> None:
    provider = HttpProvider(server.url, timeout=TIMEOUT)
    item = submission()
    server.plan(item.idempotency_key, behaviour)
    result = await provider.submit(item)
    assert isinstance(result, RetryLater)
    assert reason in result.reason
    assert server.stored == {}


async def test_throttling_passes_retry_after_on(server: FakeProvider) -> None:
    provider = HttpProvider(server.url, timeout=TIMEOUT)
    item = submission()
    server.plan(item.idempotency_key, "throttle")
    assert await provider.submit(item) == RetryLater("429 Too Many: slow down", after=1.0)


async def test_a_422_is_a_permanent_rejection_with_the_providers_words(
    server: FakeProvider,
) -> None:
    provider = HttpProvider(server.url, timeout=TIMEOUT)
    item = submission()
    server.plan(item.idempotency_key, "reject")
    result = await provider.submit(item)
    assert isinstance(result, Rejected)
    assert result.permanent
    assert "422" in result.reason
    assert "not a registered seller" in result.reason


async def test_a_chunked_answer_is_read(server: FakeProvider) -> None:
    provider = HttpProvider(server.url, timeout=TIMEOUT)
    item = submission()
    server.plan(item.idempotency_key, "chunked")
    assert await provider.submit(item) == Accepted(server.stored[item.idempotency_key].ref)


async def test_a_wrong_path_is_rejected(server: FakeProvider) -> None:
    provider = HttpProvider(server.url + "/wrong", timeout=TIMEOUT)
    result = await provider.submit(submission())
    assert isinstance(result, Rejected)
    assert "404" in result.reason


async def test_nobody_listening_is_retry_later() -> None:
    provider = HttpProvider(f"http://127.0.0.1:{free_port()}", timeout=TIMEOUT)
    result = await provider.submit(submission())
    assert isinstance(result, RetryLater)
    assert "cannot connect" in result.reason


async def test_many_receipts_at_once_each_stored_once(server: FakeProvider) -> None:
    provider = HttpProvider(server.url, timeout=TIMEOUT * 4)
    items = [submission(n) for n in range(1, 21)]
    results = await asyncio.gather(*(provider.submit(i) for i in items))
    assert all(isinstance(r, Accepted) for r in results)
    assert len({r.ref for r in results if isinstance(r, Accepted)}) == 20
    assert set(server.records.values()) == {1}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (201, b'{"reference": "R1"}', Accepted("R1")),
        (200, b"not json", RetryLater("200 without a reference")),
        (409, b'{"reference": "R1"}', Accepted("R1", duplicate=True)),
        (
            409,
            b'{"error": "key used for another document"}',
            Rejected("409 Conflict: key used for another document"),
        ),
        (503, b"", RetryLater("503 Conflict")),
        (302, b"", RetryLater("unexpected answer 302 Conflict")),
        (400, b"[1, 2]", Rejected("400 Conflict: [1, 2]")),
    ],
)
def test_interpretation_of_answers(status: int, body: bytes, expected: object) -> None:
    assert interpret(HttpResponse(status, "Conflict", {}, body)) == expected


@pytest.mark.parametrize("url", ["ftp://host/x", "http:///nohost", "http://host:99999/"])
def test_bad_provider_urls_are_named(url: str) -> None:
    with pytest.raises(ValueError, match="provider URL"):
        parse_endpoint(url)
