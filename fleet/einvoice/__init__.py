"""E-receipt transmission: a persistent queue in the fleet database, providers (an HTTP API
or a local folder), the sender that drains the queue, and linked corrections.

Typical wiring::

    with engine.begin() as conn:                       # in the sale's ingest transaction
        enqueue_for_sales(conn, sale_rows, now)
    sender = Sender(engine, HttpProvider("https://provider.example/api", token=...))
    await sender.run(stop)                             # or LocalProvider(Path("receipts/"))
"""

from __future__ import annotations

from fleet.einvoice.corrections import adjust_receipt, corrections_of, replace_receipt
from fleet.einvoice.http_provider import HttpProvider
from fleet.einvoice.local_provider import LocalProvider
from fleet.einvoice.provider import (
    Accepted,
    Provider,
    ProviderResult,
    Rejected,
    RetryLater,
    Submission,
)
from fleet.einvoice.queue import (
    Claim,
    Enqueued,
    QueuedReceipt,
    QueueState,
    RetryPolicy,
    claim,
    counts,
    enqueue,
    find_id,
    get,
    list_receipts,
    record_accepted,
    record_failure,
    retry,
)
from fleet.einvoice.receipt import (
    OutgoingReceipt,
    ReceiptError,
    ReceiptKey,
    ReceiptKind,
    idempotency_key,
)
from fleet.einvoice.sales import (
    ReceiptBuilder,
    SalesEnqueued,
    enqueue_for_sales,
    outgoing_from_receipt,
    receipt_in_row,
)
from fleet.einvoice.sender import DrainReport, Sender

__all__ = [
    "Accepted",
    "Claim",
    "DrainReport",
    "Enqueued",
    "HttpProvider",
    "LocalProvider",
    "OutgoingReceipt",
    "Provider",
    "ProviderResult",
    "QueueState",
    "QueuedReceipt",
    "ReceiptBuilder",
    "ReceiptError",
    "ReceiptKey",
    "ReceiptKind",
    "Rejected",
    "RetryLater",
    "RetryPolicy",
    "SalesEnqueued",
    "Sender",
    "Submission",
    "adjust_receipt",
    "claim",
    "corrections_of",
    "counts",
    "enqueue",
    "enqueue_for_sales",
    "find_id",
    "get",
    "idempotency_key",
    "list_receipts",
    "outgoing_from_receipt",
    "receipt_in_row",
    "record_accepted",
    "record_failure",
    "replace_receipt",
    "retry",
]
