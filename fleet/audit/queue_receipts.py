"""Receipts issued, read from the e-receipt transmission queue (``receipt_queue``).

One queue row is one document the fleet must deliver to the tax authority's provider. For
the reconciliation a row becomes a :class:`ReceiptRecord`:

* ``transmitted`` only when the provider accepted it (``pending``, ``sending``,
  ``rejected`` and ``failed`` documents were not issued, whatever the machine printed);
* an ``original`` documents the sale it was queued with (``sale_seq``); its VAT is the one
  stored on that sale (``sales.receipt_vat``, from the same document) when the sale is among
  those reconciled, else read from the document itself;
* a ``replacement`` documents the original's sale instead of the original, once accepted
  (the original then no longer counts); before that the original still stands;
* an ``adjustment`` reduces the receipt it points at (``original_id``) by minus its total:
  an adjustment of -12 000 is a reduction of 12 000, which is what a refund needs.

A sale whose receipt never reached the queue (``sales.receipt_problem``) has no row here and
is "missing receipt". Receipt numbers are spelt as machines print them
(``SYMBOL-00000042``), the spelling ``sales.receipt_number`` carries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, DateTime, select, tuple_, type_coerce

from fleet.audit.records import AuditError, ReceiptKind, ReceiptRecord, SaleRecord
from fleet.audit.streams import MachineStream, stream
from fleet.store.einvoice_models import receipt_queue as q
from protocols.einvoice import EinvoiceError, from_xml

ACCEPTED = "accepted"
_MAX_CHAIN = 32  # corrections of corrections followed at most this deep


class _Row(NamedTuple):
    id: int
    machine: str
    series: str
    number: str
    kind: str
    sale_seq: int | None
    total: int
    currency: str
    issued_at: datetime
    state: str
    original_id: int | None
    replaced_by_id: int | None


# No join with sales (it doubled the read): an original's VAT comes from the sales the
# reconciliation already loaded. issued_at as a plain DateTime: _utc sets the zone.
_COLUMNS = (
    q.c.id, q.c.machine_id, q.c.series, q.c.number, q.c.kind, q.c.sale_seq, q.c.total,
    q.c.currency, type_coerce(q.c.issued_at, DateTime()).label("issued_at"), q.c.state,
    q.c.original_id, q.c.replaced_by_id,
)  # fmt: skip


def display_number(series: str, number: str) -> str:
    """``1C26MAB-00000042``: how the machine prints the receipt number."""
    # lstrip + zfill spells int(number) as %08d without the int round trip (hot path).
    shown = number.lstrip("0").zfill(8) if number.isascii() and number.isdigit() else number
    return f"{series}-{shown}" if series else shown


class QueueReceiptSource:
    """Receipts from ``receipt_queue``; ``currency``: refuse documents in any other."""

    def __init__(self, currency: str | None = None) -> None:
        self.currency = currency

    def load(
        self,
        conn: Connection,
        machines: Sequence[str],
        start: datetime,
        end: datetime,
        sales: Sequence[SaleRecord],
    ) -> list[ReceiptRecord]:
        if not machines:
            return []
        rows: dict[int, _Row] = {}
        self._add(
            rows,
            conn,
            select(*_COLUMNS).where(
                q.c.machine_id.in_(machines), q.c.issued_at >= start, q.c.issued_at < end
            ),
        )
        return self._complete(conn, rows, start, end, sales)

    def streamed(
        self,
        conn: Connection,
        machines: Sequence[str] | None,
        rank: dict[str, int],
        start: datetime,
        end: datetime,
    ) -> StreamedQueueReceipts:
        """This source for one pass over ``rank``'s machines in that order: the range's
        receipts are read as one stream ordered by machine (like the sales), not queried
        per batch -- per batch, PostgreSQL scanned the whole queue each time."""
        return StreamedQueueReceipts(
            conn, machines, rank, start=start, end=end, currency=self.currency
        )

    def _complete(
        self,
        conn: Connection,
        rows: dict[int, _Row],
        start: datetime,
        end: datetime,
        sales: Sequence[SaleRecord],
    ) -> list[ReceiptRecord]:
        """Add receipts of ``sales`` outside the range and correction chains; set VAT."""
        outside = [_machine_seq(s.key) for s in sales if not start <= s.at < end]
        if outside:  # sales loaded from beyond the range (refunded long after)
            self._add(rows, conn, _select_where(tuple_(q.c.machine_id, q.c.sale_seq).in_(outside)))
        self._close_chains(conn, rows)
        stated = {s.key: s.receipt_vat for s in sales if s.receipt_vat is not None}
        vats: dict[int, int] = {}
        for row in rows.values():
            if row.kind == "original" and row.sale_seq is not None:
                vat = stated.get(f"{row.machine}:{row.sale_seq}")
                if vat is not None:
                    vats[row.id] = vat
        documents = load_documents(conn, [i for i in rows if i not in vats])
        for row in rows.values():
            if row.id not in vats:
                vats[row.id] = _document_vat(row, documents)
        return _records(rows, vats)

    def _add(self, rows: dict[int, _Row], conn: Connection, stmt: Any) -> None:
        self._keep(rows, conn.execute(stmt))

    def _keep(self, rows: dict[int, _Row], found: Iterable[Any]) -> None:
        for raw in found:
            row = _Row(*raw)
            if self.currency is not None and row.currency != self.currency:
                raise AuditError(
                    f"receipt {row.machine}/{row.series}/{row.number} is in {row.currency}, "
                    f"the report in {self.currency}"
                )
            rows[row.id] = row

    def _close_chains(self, conn: Connection, rows: dict[int, _Row]) -> None:
        """Load the originals of loaded corrections and the corrections of loaded rows,
        wherever in time they were issued (a refund adjusted weeks later)."""
        machines = sorted({r.machine for r in rows.values()})
        if not machines:
            return
        # Corrections are few: all of these machines' (through ix_receipt_queue_original),
        # kept when they correct a loaded row. Not "original_id IN (every loaded id)".
        corrections: dict[int, _Row] = {}
        self._add(
            corrections,
            conn,
            _select_where(q.c.original_id.is_not(None) & q.c.machine_id.in_(machines)),
        )
        for _ in range(_MAX_CHAIN):
            linked = {
                i: r for i, r in corrections.items() if i not in rows and r.original_id in rows
            }
            want = {r.original_id for r in rows.values() if r.original_id is not None}
            want = {i for i in want if i not in rows and i not in corrections}
            if not linked and not want:
                return
            rows.update(linked)
            if want:
                self._add(rows, conn, _select_where(q.c.id.in_(sorted(want))))


class StreamedQueueReceipts(QueueReceiptSource):
    """:meth:`QueueReceiptSource.streamed`: batches must ask for machines in rank order,
    over the range the stream was opened with."""

    def __init__(
        self,
        conn: Connection,
        machines: Sequence[str] | None,
        rank: dict[str, int],
        *,
        start: datetime,
        end: datetime,
        currency: str | None,
    ) -> None:
        super().__init__(currency)
        self._range = (start, end)
        where = [q.c.issued_at >= start, q.c.issued_at < end]
        if machines:
            where.append(q.c.machine_id.in_(sorted(set(machines))))
        # The machine id leads (MachineStream reads it from column 0); load drops it.
        stmt = select(q.c.machine_id, *_COLUMNS).where(*where).order_by(q.c.machine_id)
        self._stream = MachineStream(stream(conn, stmt), rank)

    def load(
        self,
        conn: Connection,
        machines: Sequence[str],
        start: datetime,
        end: datetime,
        sales: Sequence[SaleRecord],
    ) -> list[ReceiptRecord]:
        if (start, end) != self._range:
            raise AuditError("receipts asked for another range than the stream was opened on")
        rows: dict[int, _Row] = {}
        for machine in machines:
            self._keep(rows, (found[1:] for found in self._stream.take(machine)))
        return self._complete(conn, rows, start, end, sales)


def _select_where(condition: Any) -> Any:
    return select(*_COLUMNS).where(condition)


def _machine_seq(key: str) -> tuple[str, int]:
    machine, _, seq = key.rpartition(":")
    return machine, int(seq)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _records(rows: dict[int, _Row], vats: dict[int, int]) -> list[ReceiptRecord]:
    """``vats``: every row's VAT, as its document states it."""
    found: list[ReceiptRecord] = []
    for row in rows.values():
        if row.kind == "original":
            replacement = rows.get(row.replaced_by_id) if row.replaced_by_id else None
            if replacement is not None and replacement.state == ACCEPTED:
                continue  # superseded: the replacement documents the sale
            found.append(_record(row, ReceiptKind.SALE, _sale_of(rows, row), None, vats[row.id]))
        elif row.kind == "replacement":
            found.append(_record(row, ReceiptKind.SALE, _sale_of(rows, row), None, vats[row.id]))
        elif row.kind == "adjustment":
            target = rows.get(row.original_id) if row.original_id is not None else None
            number = display_number(target.series, target.number) if target else None
            found.append(_record(row, ReceiptKind.ADJUSTMENT, None, number, vats[row.id]))
        else:
            raise AuditError(f"receipt {row.machine}/{row.series}/{row.number}: kind {row.kind!r}")
    return found


def _sale_of(rows: dict[int, _Row], row: _Row) -> str | None:
    """The sale a receipt documents: its own, else the one of the receipt it replaces."""
    current: _Row | None = row
    for _ in range(_MAX_CHAIN):
        if current is None:
            return None
        if current.sale_seq is not None:
            return f"{current.machine}:{current.sale_seq}"
        current = rows.get(current.original_id) if current.original_id is not None else None
    return None


def _record(
    row: _Row,
    kind: ReceiptKind,
    sale_key: str | None,
    original: str | None,
    vat: int,
) -> ReceiptRecord:
    amount = row.total
    if kind is ReceiptKind.ADJUSTMENT:
        amount, vat = -amount, -vat  # what it takes off the receipt it adjusts
    suffix = "" if row.kind == "original" else f":{row.kind}"
    return ReceiptRecord(
        key=f"{row.machine}/{row.series}/{row.number}{suffix}",
        machine=row.machine,
        number=display_number(row.series, row.number),
        at=_utc(row.issued_at),
        amount=amount,
        vat=vat,
        kind=kind,
        original=original,
        transmitted=row.state == ACCEPTED,
        sale_key=sale_key,
    )


def _document_vat(row: _Row, documents: dict[int, bytes]) -> int:
    raw = documents.get(row.id)
    if raw is None:
        raise AuditError(f"receipt {row.machine}/{row.series}/{row.number}: document not loaded")
    try:
        return from_xml(raw).total_vat
    except EinvoiceError as exc:
        raise AuditError(
            f"receipt {row.machine}/{row.series}/{row.number}: unreadable document: {exc}"
        ) from None


def load_documents(conn: Connection, ids: Iterable[int]) -> dict[int, bytes]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return dict(conn.execute(select(q.c.id, q.c.document).where(q.c.id.in_(wanted))).all())
