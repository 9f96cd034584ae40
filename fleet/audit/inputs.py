"""Operator and processor inputs: cash counts (CLI or CSV) and settlement files (CSV with
a configurable column mapping). Every error names the file, line and column; imports are
idempotent (a row already stored is skipped, a changed row is refused unless replaced).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, select, update

from fleet.audit.amounts import parse_amount, parse_cash, parse_date, parse_time
from fleet.audit.records import AuditError, SettlementKind
from fleet.audit.source import utc
from fleet.store.audit_models import audit_cash_counts, audit_imports, audit_settlements
from fleet.store.models import service_visits
from fleet.store.upsert import bulk_insert

_MAX_ROWS = 1_000_000


@dataclass(frozen=True, slots=True)
class CashCountEntry:
    machine: str
    visit: str
    coins: int
    bills: int
    change_added: int = 0
    refunds_by_hand: int = 0
    at: datetime | None = None  # None: the time of service visit ``visit``
    currency: str = "VND"
    source: str = "cli"

    def __post_init__(self) -> None:
        if not self.machine or not self.visit:
            raise AuditError("a cash count needs a machine and a visit")
        for name in ("coins", "bills", "change_added", "refunds_by_hand"):
            if getattr(self, name) < 0:
                raise AuditError(f"{name} cannot be negative")


@dataclass(frozen=True, slots=True)
class ImportResult:
    rows: int
    imported: int
    unchanged: int
    already_imported: bool = False


def visit_time(conn: Connection, machine: str, visit: str) -> datetime:
    """When service visit ``visit`` (its id) of ``machine`` closed (or opened)."""
    if not visit.isdigit():
        raise AuditError(f"visit {visit!r} is not a service visit id: give the time with --at")
    row = conn.execute(
        select(service_visits.c.opened_at, service_visits.c.closed_at).where(
            and_(service_visits.c.id == int(visit), service_visits.c.machine_id == machine)
        )
    ).first()
    if row is None:
        raise AuditError(f"machine {machine} has no service visit {visit}: give the time with --at")
    return utc(row.closed_at or row.opened_at)


def record_cash_count(
    conn: Connection, entry: CashCountEntry, *, now: datetime, replace_existing: bool = False
) -> str:
    """Store a count; returns ``recorded``, ``unchanged`` or ``replaced``."""
    at = entry.at or visit_time(conn, entry.machine, entry.visit)
    values = {
        "machine_id": entry.machine,
        "visit": entry.visit,
        "counted_at": at,
        "currency": entry.currency,
        "coins": entry.coins,
        "bills": entry.bills,
        "change_added": entry.change_added,
        "refunds_by_hand": entry.refunds_by_hand,
    }
    existing = conn.execute(
        select(audit_cash_counts).where(
            and_(
                audit_cash_counts.c.machine_id == entry.machine,
                audit_cash_counts.c.visit == entry.visit,
            )
        )
    ).first()
    if existing is None:
        conn.execute(
            audit_cash_counts.insert().values({**values, "source": entry.source, "entered_at": now})
        )
        return "recorded"
    same = all(
        (utc(existing.counted_at) if k == "counted_at" else getattr(existing, k)) == v
        for k, v in values.items()
    )
    if same:
        return "unchanged"
    if not replace_existing:
        raise AuditError(
            f"machine {entry.machine} visit {entry.visit} was already counted with other "
            "figures; pass --replace to correct it (an adjustment, if its period is locked)"
        )
    conn.execute(
        update(audit_cash_counts)
        .where(audit_cash_counts.c.id == existing.id)
        .values({**values, "source": entry.source, "entered_at": now})
    )
    return "replaced"


def _file_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AuditError(f"{path}: cannot read ({exc.strerror})") from None


def _rows(
    path: Path, data: bytes, delimiter: str
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AuditError(f"{path}: not UTF-8 (byte {exc.start})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = list(reader.fieldnames or [])
        rows: list[tuple[int, dict[str, str]]] = []
        for row in reader:
            if len(rows) >= _MAX_ROWS:
                raise AuditError(f"{path}: more than {_MAX_ROWS} rows")
            if None in row:
                raise AuditError(f"{path}:{reader.line_num}: more fields than the header has")
            rows.append((reader.line_num, {k: (v or "") for k, v in row.items()}))
    except csv.Error as exc:
        raise AuditError(f"{path}:{reader.line_num}: {exc}") from None
    if not header:
        raise AuditError(f"{path}: empty file, expected a header line")
    return header, rows


def _cell(
    path: Path, line: int, row: Mapping[str, str], column: str, parse: Callable[[str], Any]
) -> Any:
    try:
        return parse(row[column])
    except AuditError as exc:
        raise AuditError(f"{path}:{line}: column {column!r}: {exc}") from None


CASH_COLUMNS = ("machine", "visit", "coins", "bills")
CASH_OPTIONAL = ("at", "change_added", "refunds_by_hand")


def import_cash_counts(
    engine: Engine,
    path: Path,
    *,
    now: datetime,
    timezone: str,
    currency: str = "VND",
    replace_existing: bool = False,
) -> ImportResult:
    """CSV with columns machine, visit, coins, bills [, at, change_added, refunds_by_hand]."""
    data = _file_bytes(path)
    header, rows = _rows(path, data, ",")
    missing = [c for c in CASH_COLUMNS if c not in header]
    if missing:
        raise AuditError(f"{path}:1: missing column(s) {', '.join(missing)}")
    entries = []
    for line, row in rows:
        when = row.get("at", "").strip()
        entries.append(
            CashCountEntry(
                machine=row["machine"].strip(),
                visit=row["visit"].strip(),
                coins=_cell(path, line, row, "coins", parse_cash),
                bills=_cell(path, line, row, "bills", parse_cash),
                change_added=_cell(path, line, row, "change_added", parse_cash)
                if row.get("change_added", "").strip()
                else 0,
                refunds_by_hand=_cell(path, line, row, "refunds_by_hand", parse_cash)
                if row.get("refunds_by_hand", "").strip()
                else 0,
                at=_cell(path, line, row, "at", lambda t: parse_time(t, "iso", timezone))
                if when
                else None,
                currency=currency,
                source=f"{path.name}:{line}",
            )
        )
    counts = {"recorded": 0, "unchanged": 0, "replaced": 0}
    with engine.begin() as conn:
        for (line, _), entry in zip(rows, entries, strict=True):
            try:
                counts[
                    record_cash_count(conn, entry, now=now, replace_existing=replace_existing)
                ] += 1
            except AuditError as exc:
                raise AuditError(f"{path}:{line}: {exc}") from None
        imported = counts["recorded"] + counts["replaced"]
        _log_import(conn, data, path, kind="cash", counts=(len(rows), imported), now=now)
    return ImportResult(len(rows), imported, counts["unchanged"])


def _log_import(
    conn: Connection,
    data: bytes,
    path: Path,
    *,
    kind: str,
    counts: tuple[int, int],
    now: datetime,
) -> bool:
    rows, imported = counts
    digest = hashlib.sha256(data).hexdigest()
    done = bulk_insert(
        conn,
        audit_imports,
        [
            {
                "kind": kind,
                "sha256": digest,
                "filename": path.name,
                "rows": rows,
                "imported": imported,
                "imported_at": now,
            }
        ],
        skip_conflicts_on=("kind", "sha256"),
        returning=("id",),
    )
    return not done


# -- settlement files -----------------------------------------------------------------

SETTLEMENT_FIELDS = (
    "time",
    "terminal",
    "amount",
    "fee",
    "kind",
    "reference",
    "original_reference",
    "settlement_date",
)
REQUIRED_FIELDS = ("time", "terminal", "amount")


@dataclass(frozen=True, slots=True)
class SettlementMapping:
    """How a processor's CSV maps to settlement rows.

    ``columns``: our field -> the file's header. ``kinds``: our kind -> the values the
    file uses for it (without a kind column, a negative amount is a refund). ``terminals``:
    the file's terminal id -> machine id (unlisted terminals are taken as machine ids).
    """

    columns: Mapping[str, str]
    kinds: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "sale": ("sale", "SALE", "purchase", "PURCHASE"),
            "refund": ("refund", "REFUND"),
            "chargeback": ("chargeback", "CHARGEBACK"),
        }
    )
    terminals: Mapping[str, str] = field(default_factory=dict)
    time_format: str = "iso"
    date_format: str = "iso"
    timezone: str = "Asia/Ho_Chi_Minh"
    decimal_places: int = 0
    thousands: str = ""
    delimiter: str = ","
    currency: str = "VND"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.columns) - set(SETTLEMENT_FIELDS))
        if unknown:
            raise AuditError(
                f"mapping: unknown field(s) {', '.join(unknown)}; "
                f"known: {', '.join(SETTLEMENT_FIELDS)}"
            )
        missing = [f for f in REQUIRED_FIELDS if f not in self.columns]
        if missing:
            raise AuditError(f"mapping: no column for {', '.join(missing)}")
        if len(self.delimiter) != 1:
            raise AuditError("mapping: delimiter must be one character")
        if not 0 <= self.decimal_places <= 4:
            raise AuditError("mapping: decimal_places must be 0 to 4")

    def with_columns(self, overrides: Mapping[str, str]) -> SettlementMapping:
        return replace(self, columns={**self.columns, **overrides})


def load_mapping(path: Path | None, overrides: Mapping[str, str] = {}) -> SettlementMapping:
    """A mapping from a TOML or JSON file (sections ``columns``, ``kinds``, ``terminals``,
    ``format``), with CLI ``overrides`` of single columns; no file: overrides only."""
    doc: dict[str, Any] = {}
    if path is not None:
        data = _file_bytes(path)
        try:
            doc = (
                json.loads(data)
                if path.suffix.lower() == ".json"
                else tomllib.loads(data.decode("utf-8"))
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise AuditError(
                f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'}: {exc}"
            ) from None
    if not isinstance(doc, dict):
        raise AuditError(f"{path}: expected a table/object at the top")
    columns = _str_map(doc.get("columns", {}), "columns")
    terminals = _str_map(doc.get("terminals", {}), "terminals")
    kinds_doc = doc.get("kinds")
    fmt = doc.get("format", {})
    if not isinstance(fmt, dict):
        raise AuditError("mapping: [format] must be a table")
    options: dict[str, Any] = {}
    for key, kind in (
        ("time", str),
        ("date", str),
        ("timezone", str),
        ("decimal_places", int),
        ("thousands", str),
        ("delimiter", str),
        ("currency", str),
    ):
        if key in fmt:
            if not isinstance(fmt[key], kind) or isinstance(fmt[key], bool):
                raise AuditError(f"mapping: format.{key} must be a {kind.__name__}")
            options[{"time": "time_format", "date": "date_format"}.get(key, key)] = fmt[key]
    mapping = SettlementMapping(columns={**columns, **overrides}, terminals=terminals, **options)
    if kinds_doc is not None:
        if not isinstance(kinds_doc, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in kinds_doc.values()
        ):
            raise AuditError("mapping: [kinds] maps sale/refund/chargeback to lists of strings")
        bad = sorted(set(kinds_doc) - {k.value for k in SettlementKind})
        if bad:
            raise AuditError(f"mapping: unknown kind(s) {', '.join(bad)}")
        mapping = replace(mapping, kinds={k: tuple(v) for k, v in kinds_doc.items()})
    return mapping


def _str_map(value: Any, name: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise AuditError(f"mapping: [{name}] must map names to strings")
    return dict(value)


def parse_settlements(path: Path, data: bytes, mapping: SettlementMapping) -> list[dict[str, Any]]:
    header, rows = _rows(path, data, mapping.delimiter)
    cols = mapping.columns
    missing = [f"{f} ({cols[f]!r})" for f in cols if cols[f] not in header]
    if missing:
        raise AuditError(f"{path}:1: the header has no column for {', '.join(missing)}")
    by_value = {v: kind for kind, values in mapping.kinds.items() for v in values}
    money = _money_parser(mapping)
    out = []
    for line, row in rows:
        cell = _Cells(path, line, row, cols)
        amount: int = cell.get("amount", money)
        fee: int = cell.get("fee", money, 0)
        kind_text = cell.get("kind", str.strip)
        if kind_text is None:
            kind = "refund" if amount < 0 else "sale"
        elif kind_text in by_value:
            kind = by_value[kind_text]
        else:
            raise AuditError(f"{path}:{line}: column {cols['kind']!r}: unknown kind {kind_text!r}")
        terminal = cell.get("terminal", str.strip)
        at: datetime = cell.get(
            "time", lambda t: parse_time(t, mapping.time_format, mapping.timezone)
        )
        settled: date | None = cell.get(
            "settlement_date", lambda t: parse_date(t, mapping.date_format)
        )
        reference = cell.get("reference", str.strip)
        original = cell.get("original_reference", str.strip)
        record = {
            "machine_id": mapping.terminals.get(terminal, terminal),
            "terminal": terminal,
            "at": at,
            "amount": abs(amount),
            "fee": abs(fee),
            "currency": mapping.currency,
            "kind": kind,
            "reference": reference,
            "original_reference": original,
            "settlement_date": settled,
            "source": f"{path.name}:{line}",
        }
        record["row_key"] = _row_key(record)
        out.append(record)
    return out


def _money_parser(mapping: SettlementMapping) -> Callable[[str], int]:
    def parse(text: str) -> int:
        return parse_amount(text, mapping.decimal_places, thousands=mapping.thousands)

    return parse


@dataclass(frozen=True, slots=True)
class _Cells:
    path: Path
    line: int
    row: Mapping[str, str]
    columns: Mapping[str, str]

    def get(self, name: str, parse: Callable[[str], Any], default: Any = None) -> Any:
        column = self.columns.get(name)
        if column is None or not self.row[column].strip():
            if name in REQUIRED_FIELDS:
                raise AuditError(f"{self.path}:{self.line}: column {column!r}: empty")
            return default
        return _cell(self.path, self.line, self.row, column, parse)


def _row_key(record: Mapping[str, Any]) -> str:
    if record["reference"]:
        return f"{record['kind']}:{record['reference']}"[:128]
    # No reference: the row's own content is its identity.
    content = "|".join(
        str(record[k]) for k in ("machine_id", "at", "amount", "fee", "kind", "original_reference")
    )
    return "row:" + hashlib.sha256(content.encode()).hexdigest()


def import_settlements(
    engine: Engine, path: Path, mapping: SettlementMapping, *, now: datetime
) -> ImportResult:
    """Import a settlement CSV; rows already stored (same reference and kind) are skipped."""
    data = _file_bytes(path)
    records = parse_settlements(path, data, mapping)
    keys: dict[str, str] = {}
    for record in records:
        if record["row_key"] in keys:
            raise AuditError(f"{record['source']}: same transaction as {keys[record['row_key']]}")
        keys[record["row_key"]] = record["source"]
    with engine.begin() as conn:
        inserted = (
            bulk_insert(
                conn,
                audit_settlements,
                records,
                skip_conflicts_on=("row_key",),
                returning=("row_key",),
            )
            if records
            else []
        )
        again = _log_import(
            conn, data, path, kind="settlement", counts=(len(records), len(inserted)), now=now
        )
    return ImportResult(
        len(records), len(inserted), len(records) - len(inserted), already_imported=again
    )
