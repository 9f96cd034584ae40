"""An auditor's export folder: CSV (always: the data of record), XLSX and PDF on request,
``manifest.json`` and its signature.

A locked period is exported from its locked bytes and dated with its lock time, so
exporting it again gives byte-identical files; an unlocked one is reconciled afresh and
dated with the period end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from fleet.audit.export_csv import csv_files
from fleet.audit.export_pdf import pdf_bytes
from fleet.audit.export_xlsx import workbook_bytes
from fleet.audit.lock import get_lock
from fleet.audit.manifest import MANIFEST, SIGNATURE, SigningKey, build_manifest, export_info
from fleet.audit.periods import Period
from fleet.audit.receipts import ReceiptSource
from fleet.audit.records import AuditError, ReconcileConfig
from fleet.audit.report import ReconciliationReport, sha256_hex
from fleet.audit.report_json import report_from_json
from fleet.audit.source import reconcile_from_store

FORMATS = ("csv", "xlsx", "pdf")
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ExportResult:
    folder: Path
    files: tuple[str, ...]  # every file written, manifest and signature last
    manifest_sha256: str
    key_id: str
    locked: bool


def parse_formats(values: Iterable[str]) -> tuple[str, ...]:
    """``csv``, ``xlsx``, ``pdf`` or ``all`` (repeatable, comma lists allowed)."""
    chosen: set[str] = set()
    for value in values:
        for item in value.split(","):
            name = item.strip().lower()
            if name == "all":
                chosen.update(FORMATS)
            elif name in FORMATS:
                chosen.add(name)
            else:
                raise AuditError(f"unknown format {item!r}: expected csv, xlsx, pdf or all")
    return tuple(f for f in FORMATS if f in chosen or f == "csv")


def _names(label: str) -> dict[str, str]:
    return {"xlsx": f"reconciliation-{label}.xlsx", "pdf": f"reconciliation-{label}.pdf"}


def render_files(
    report: ReconciliationReport,
    key: SigningKey,
    *,
    formats: Sequence[str] = FORMATS,
    report_sha256: str | None = None,
    issued_at: datetime | None = None,
    locked_by: str | None = None,
    progress: Progress | None = None,
) -> dict[str, bytes]:
    """Every file of the export, name -> bytes (pure: no clock, no I/O but the font)."""
    step = progress or (lambda _: None)
    info = export_info(
        report,
        key,
        report_sha256=report_sha256 or sha256_hex(report.to_canonical_json()),
        issued_at=issued_at or report.end,
        locked_by=locked_by,
    )
    names = _names(report.label)
    step("csv")
    files = csv_files(report, info)
    if "xlsx" in formats:
        step("xlsx")
        files[names["xlsx"]] = workbook_bytes(report, info)
    if "pdf" in formats:
        step("pdf")
        files[names["pdf"]] = pdf_bytes(report, info)
    step("manifest")
    manifest, signature = build_manifest(report, info, files, key)
    files[MANIFEST] = manifest
    files[SIGNATURE] = signature
    return files


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Into ``folder`` (created if needed); refuses a folder holding anything else, since
    verification treats any file the manifest does not list as a problem."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        foreign = sorted(p.name for p in folder.iterdir() if p.name not in files)
    except OSError as exc:
        raise AuditError(f"{folder}: cannot use as the export folder ({exc.strerror})") from None
    if foreign:
        raise AuditError(f"{folder}: holds other files ({', '.join(foreign[:5])}); use an "
                         "empty folder")  # fmt: skip
    for name, data in files.items():
        try:
            (folder / name).write_bytes(data)
        except OSError as exc:
            raise AuditError(f"{folder / name}: cannot write ({exc.strerror})") from None


def export_period(
    engine: Engine,
    period: Period,
    config: ReconcileConfig,
    folder: Path,
    key: SigningKey,
    *,
    formats: Sequence[str] = FORMATS,
    receipts: ReceiptSource | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    step = progress or (lambda _: None)
    step("reconcile")
    with engine.connect() as conn:
        lock = get_lock(conn, period.label)
    if lock is not None:
        report = report_from_json(lock.report)
        files = render_files(
            report, key, formats=formats, report_sha256=lock.sha256,
            issued_at=lock.locked_at, locked_by=lock.locked_by, progress=progress,
        )  # fmt: skip
    else:
        report = reconcile_from_store(engine, period, config, receipts=receipts)
        files = render_files(report, key, formats=formats, progress=progress)
    write_files(folder, files)
    return ExportResult(
        folder=folder,
        files=tuple(files),
        manifest_sha256=sha256_hex(files[MANIFEST]),
        key_id=key.key_id,
        locked=lock is not None,
    )
