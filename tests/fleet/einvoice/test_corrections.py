"""Replacement and adjustment of a wrong receipt: linked both ways, refused when the
original is unknown, already replaced or never accepted, and sent only after the original
with its provider reference."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from fleet.einvoice import (
    LocalProvider,
    OutgoingReceipt,
    QueueState,
    ReceiptError,
    ReceiptKind,
    Sender,
    adjust_receipt,
    claim,
    corrections_of,
    enqueue,
    find_id,
    get,
    record_accepted,
    record_failure,
    replace_receipt,
)
from tests.fleet.einvoice.support import T0, Clock, key, outgoing

LATER = T0 + timedelta(hours=2)


def replacement(number: int, of: int) -> OutgoingReceipt:
    return outgoing(number, kind=ReceiptKind.REPLACEMENT, original=key(of), note="fixed")


def adjustment(number: int, of: int, total: int = -2000) -> OutgoingReceipt:
    return outgoing(number, kind=ReceiptKind.ADJUSTMENT, original=key(of), total=total)


def test_a_replacement_is_linked_both_ways(engine: Engine) -> None:
    with engine.begin() as conn:
        enqueue(conn, outgoing(1), T0)
        queued = replace_receipt(conn, key(1), replacement(2, of=1), LATER)
        again = replace_receipt(conn, key(1), replacement(2, of=1), LATER)
        original = get(conn, find_id(conn, key(1)) or 0)
        chain = corrections_of(conn, key(1))
    assert queued == again  # repeating the same call changes nothing
    assert (queued.kind, queued.original, queued.state) == (
        ReceiptKind.REPLACEMENT,
        key(1),
        QueueState.PENDING,
    )
    assert original.replaced_by == key(2)
    assert original.state is QueueState.PENDING
    assert [c.key for c in chain] == [key(2)]


def test_refusals_name_the_problem(engine: Engine) -> None:
    with engine.begin() as conn:
        enqueue(conn, outgoing(1), T0)
        replace_receipt(conn, key(1), replacement(2, of=1), LATER)
    cases = [
        (key(9), replacement(3, of=9), "unknown receipt"),
        (key(1), replacement(3, of=1), "already replaced by vm-0001/1C26MAA/2"),
        (key(1), replace(replacement(2, of=1), xml=b"<HDon>other</HDon>"), "different content"),
        (key(1), outgoing(3), "expected a replacement"),
        (key(2), replacement(3, of=1), "names vm-0001/1C26MAA/1 as its original"),
    ]
    for original, document, message in cases:
        with engine.begin() as conn, pytest.raises(ReceiptError, match=message):
            replace_receipt(conn, original, document, LATER)
    with engine.begin() as conn, pytest.raises(ReceiptError, match="adjust the replacement"):
        adjust_receipt(conn, key(1), adjustment(4, of=1), LATER)
    with engine.connect() as conn:
        assert [c.key for c in corrections_of(conn, key(1))] == [key(2)]
        assert find_id(conn, key(3)) is None  # refused calls left nothing behind
        assert find_id(conn, key(4)) is None


def test_a_never_accepted_receipt_cannot_be_corrected(engine: Engine) -> None:
    with engine.begin() as conn:
        enqueue(conn, outgoing(1), T0)
        (taken,) = claim(conn, T0, 1)
        record_failure(
            conn, taken, provider="p", reason="422", permanent=True, now=T0, rng=random.Random(1)
        )
    with engine.begin() as conn, pytest.raises(ReceiptError, match="never accepted"):
        replace_receipt(conn, key(1), replacement(2, of=1), LATER)


def test_adjustments_stack_and_a_replacement_can_be_replaced(engine: Engine) -> None:
    with engine.begin() as conn:
        enqueue(conn, outgoing(1), T0)
        adjust_receipt(conn, key(1), adjustment(2, of=1), LATER)
        adjust_receipt(conn, key(1), adjustment(3, of=1, total=500), LATER)
        replace_receipt(conn, key(1), replacement(4, of=1), LATER)
        replace_receipt(conn, key(4), replacement(5, of=4), LATER)
        chain = corrections_of(conn, key(1))
        second = get(conn, find_id(conn, key(4)) or 0)
    assert [(c.key, c.kind) for c in chain] == [
        (key(2), ReceiptKind.ADJUSTMENT),
        (key(3), ReceiptKind.ADJUSTMENT),
        (key(4), ReceiptKind.REPLACEMENT),
    ]
    assert (second.original, second.replaced_by) == (key(1), key(5))


def test_a_correction_waits_for_its_original_and_carries_its_reference(engine: Engine) -> None:
    with engine.begin() as conn:
        enqueue(conn, outgoing(1), T0)
        replace_receipt(conn, key(1), replacement(2, of=1), T0)
        first = claim(conn, T0, 10)
    assert [c.submission.key for c in first] == [key(1)]  # the replacement must wait
    with engine.begin() as conn:
        assert record_accepted(conn, first[0], provider="p", ref="PRV-1", now=T0)
        (second,) = claim(conn, T0, 10)
    assert second.submission.key == key(2)
    assert second.submission.original == key(1)
    assert second.submission.original_ref == "PRV-1"


async def test_the_sender_delivers_original_then_replacement(
    engine: Engine, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        enqueue(conn, outgoing(1), T0)
        replace_receipt(conn, key(1), replacement(2, of=1), T0)
    clock = Clock()
    provider = LocalProvider(tmp_path)
    sender = Sender(engine, provider, clock=clock)
    first = await sender.drain_once()
    second = await sender.drain_once()
    assert (first.accepted, second.accepted) == (1, 1)
    with engine.connect() as conn:
        states = {r.key: r.state for r in corrections_of(conn, key(1))}
    assert states == {key(2): QueueState.ACCEPTED}
    assert len(list(tmp_path.glob("*.replacement.*.xml"))) == 1
