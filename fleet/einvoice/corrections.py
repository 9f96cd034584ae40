"""Replacing or adjusting a wrong receipt, linked to the one it corrects.

A receipt can be replaced once (the replacement itself may later be replaced in turn) and
adjusted any number of times while it has not been replaced. Both are ordinary queue rows
with their own receipt number; the link lets the sender hand the provider the original's
reference and lets auditors follow the chain. Everything runs in the caller's transaction:
a refusal raises ``ReceiptError`` and the caller's rollback leaves nothing behind.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from fleet.einvoice.queue import Enqueued, QueuedReceipt, QueueState, find_id, get, insert_receipt
from fleet.einvoice.receipt import OutgoingReceipt, ReceiptError, ReceiptKey, ReceiptKind
from fleet.store.einvoice_models import receipt_queue as q

NEVER_ACCEPTED = frozenset({QueueState.REJECTED, QueueState.FAILED})


def replace_receipt(
    conn: Connection, original: ReceiptKey, corrected: OutgoingReceipt, now: datetime
) -> QueuedReceipt:
    """Queue ``corrected`` as the replacement of ``original``. Repeating the same call is
    harmless; a second, different replacement is refused."""
    _check_document(original, corrected, ReceiptKind.REPLACEMENT)
    target = _target(conn, original)
    existing = _existing(conn, corrected, target.id)
    if existing is not None:
        return existing
    if target.replaced_by is not None:
        raise ReceiptError(f"receipt {original} was already replaced by {target.replaced_by}")
    new_id = _insert(conn, corrected, target.id, now)
    linked = conn.execute(
        update(q)
        .where(q.c.id == target.id, q.c.replaced_by_id.is_(None))
        .values(replaced_by_id=new_id, updated_at=now)
    )
    if linked.rowcount != 1:  # another worker replaced it between our read and this update
        raise ReceiptError(f"receipt {original} was replaced concurrently; nothing queued")
    return get(conn, new_id)


def adjust_receipt(
    conn: Connection, original: ReceiptKey, adjustment: OutgoingReceipt, now: datetime
) -> QueuedReceipt:
    """Queue ``adjustment`` against ``original``, which must not have been replaced."""
    _check_document(original, adjustment, ReceiptKind.ADJUSTMENT)
    target = _target(conn, original)
    existing = _existing(conn, adjustment, target.id)
    if existing is not None:
        return existing
    if target.replaced_by is not None:
        raise ReceiptError(
            f"receipt {original} was replaced by {target.replaced_by}: adjust the replacement"
        )
    return get(conn, _insert(conn, adjustment, target.id, now))


def corrections_of(conn: Connection, original: ReceiptKey) -> list[QueuedReceipt]:
    """Replacements and adjustments queued against ``original``, oldest first."""
    row_id = find_id(conn, original)
    if row_id is None:
        raise ReceiptError(f"unknown receipt {original}")
    ids = conn.execute(select(q.c.id).where(q.c.original_id == row_id).order_by(q.c.id))
    return [get(conn, child) for child in ids.scalars()]


def _check_document(original: ReceiptKey, document: OutgoingReceipt, kind: ReceiptKind) -> None:
    if document.kind is not kind:
        raise ReceiptError(
            f"receipt {document.key} is a {document.kind.value}, expected a {kind.value}"
        )
    if document.original != original:
        raise ReceiptError(
            f"{kind.value} {document.key} names {document.original} as its original, not {original}"
        )


def _target(conn: Connection, original: ReceiptKey) -> QueuedReceipt:
    row_id = find_id(conn, original)
    if row_id is None:
        raise ReceiptError(f"unknown receipt {original}: nothing to correct")
    # Lock the original (PostgreSQL; SQLite already holds the write lock) so concurrent
    # corrections of one receipt queue behind each other.
    conn.execute(select(q.c.id).where(q.c.id == row_id).with_for_update())
    target = get(conn, row_id)
    if target.state in NEVER_ACCEPTED:
        raise ReceiptError(
            f"receipt {original} was never accepted by the provider ({target.state.value}): "
            "retry it or issue a new receipt instead of correcting it"
        )
    return target


def _existing(
    conn: Connection, document: OutgoingReceipt, original_id: int
) -> QueuedReceipt | None:
    """The same correction queued before (idempotent repeat), or None; a different
    document or original under the same receipt number is refused."""
    row = conn.execute(
        select(q.c.id, q.c.document, q.c.original_id).where(
            q.c.idempotency_key == document.idempotency_key
        )
    ).first()
    if row is None:
        return None
    if row.document != document.xml or row.original_id != original_id:
        raise ReceiptError(
            f"receipt {document.key} ({document.kind.value}) is already queued with "
            "different content or for another original"
        )
    return get(conn, row.id)


def _insert(conn: Connection, document: OutgoingReceipt, original_id: int, now: datetime) -> int:
    if insert_receipt(conn, document, now, original_id=original_id) is not Enqueued.NEW:
        raise ReceiptError(f"receipt {document.key} ({document.kind.value}) is already queued")
    row_id = find_id(conn, document.key, document.kind)
    assert row_id is not None
    return row_id
