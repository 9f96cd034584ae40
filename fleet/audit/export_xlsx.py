"""XLSX export: a sheet per grain, frozen headers, a totals row under every table.

Sheets: ``README`` (period, currency, sign convention, status), ``intervals``,
``machines``, ``locations``, ``routes``, ``months``, ``period``, ``discrepancies``. Money
cells are integers in minor units with a grouped number format; totals rows hold values
(no formulas: a reader without a calculation engine sees the same figures). The workbook
carries the export's one timestamp, and its zip entries are rewritten with it, so the same
report gives the same bytes.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.xml.functions import tostring

from fleet.audit.export_csv import (
    DISCREPANCY_HEADER,
    INTERVAL_HEADER,
    ROLLUP_HEADER,
    interval_row,
)
from fleet.audit.export_info import (
    CATEGORIES,
    GRAIN_NAMES,
    SIGN_CONVENTION,
    TOTAL_FIELDS,
    ExportInfo,
    period_lines,
)
from fleet.audit.report import ReconciliationReport, iso

MONEY_FORMAT = "#,##0;-#,##0;0"
_BOLD = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDE4EE")
_TOTAL_FILL = PatternFill("solid", fgColor="F2F2F2")
# Integer columns that are counts, not money (no grouping needed but harmless).
_NUMERIC = {"interval", "rows", "amount", *TOTAL_FIELDS, *(f"net_{c}" for c in CATEGORIES)}


def _cell(ws: WriteOnlyWorksheet, value: object, *, bold: bool = False,
          fill: PatternFill | None = None, money: bool = False) -> Cell:  # fmt: skip
    cell = WriteOnlyCell(ws, value=value)  # type: ignore[arg-type]  # ints, str, None
    if bold:
        cell.font = _BOLD
    if fill is not None:
        cell.fill = fill
    if money:
        cell.number_format = MONEY_FORMAT
    return cell


def _table(
    ws: WriteOnlyWorksheet,
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    total_label_column: int = 0,
) -> None:
    """Header (frozen), rows, then a TOTAL row summing every numeric column but ``interval``."""
    ws.freeze_panes = "A2"
    for index, name in enumerate(header):
        width = max(10, min(28, len(name) + 2))
        _width(ws, _column_letter(index), width)
    ws.append([_cell(ws, name, bold=True, fill=_HEADER_FILL) for name in header])
    summed = [name in _NUMERIC and name != "interval" for name in header]
    totals = [0] * len(header)
    for row in rows:
        cells = []
        for index, value in enumerate(row):
            if summed[index] and isinstance(value, int):
                totals[index] += value
            cells.append(_cell(ws, value, money=summed[index]))
        ws.append(cells)
    last = [
        _cell(ws, totals[i] if summed[i] else None, bold=True, fill=_TOTAL_FILL, money=summed[i])
        for i in range(len(header))
    ]
    last[total_label_column] = _cell(ws, "TOTAL", bold=True, fill=_TOTAL_FILL)
    ws.append(last)


def _width(ws: WriteOnlyWorksheet, column: str, width: float) -> None:
    # Write-only sheets have column_dimensions at run time; the stubs do not say so.
    ws.column_dimensions[column].width = width  # type: ignore[attr-defined]


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def workbook_bytes(report: ReconciliationReport, info: ExportInfo) -> bytes:
    wb = Workbook(write_only=True)
    about = wb.create_sheet("README")
    _width(about, "A", 24)
    _width(about, "B", 80)
    for label, value in period_lines(report, info):
        about.append([_cell(about, label, bold=True), value])
    about.append([_cell(about, "amounts", bold=True),
                  f"integers in minor units of {report.currency}; {SIGN_CONVENTION}"])  # fmt: skip
    about.append([_cell(about, "totals rows", bold=True),
                  "the last row of every sheet (TOTAL) sums its numeric columns"])  # fmt: skip

    intervals = wb.create_sheet("intervals")
    _table(intervals, INTERVAL_HEADER, (interval_row(r, report.currency) for r in report.rows))

    grain_header = [h for h in ROLLUP_HEADER if h != "grain"]
    for grain, items in report.rollups.items():
        ws = wb.create_sheet(GRAIN_NAMES.get(grain, grain)[:31])
        _table(
            ws,
            grain_header,
            (
                [
                    item.key,
                    item.rows,
                    report.currency,
                    *item.totals.to_dict().values(),
                    *(item.by_category.get(c, 0) for c in CATEGORIES),
                ]
                for item in items
            ),
        )

    found = wb.create_sheet("discrepancies")
    _table(
        found,
        DISCREPANCY_HEADER,
        (
            [
                d.id,
                d.machine,
                d.interval,
                d.category.value,
                d.amount,
                report.currency,
                iso(d.at),
                d.ref,
                d.detail,
            ]
            for d in report.discrepancies
        ),
    )
    stamp = info.issued_at.astimezone(UTC).replace(tzinfo=None)
    wb.properties.creator = "vendfleet"
    wb.properties.title = f"Reconciliation {report.label}"
    wb.properties.created = stamp
    buffer = io.BytesIO()
    wb.save(buffer)
    wb.properties.modified = stamp  # save() stamped "now"; the rewrite below puts ours back
    core = tostring(wb.properties.to_tree())
    return _rezip(buffer.getvalue(), info.issued_at, {"docProps/core.xml": core})


def _rezip(data: bytes, moment: datetime, replace: dict[str, bytes]) -> bytes:
    """The same archive with every entry dated ``moment`` (zip times are local, 2 s)."""
    local = moment.astimezone(UTC)
    stamp = (max(local.year, 1980), local.month, local.day, local.hour, local.minute,
             local.second - local.second % 2)  # fmt: skip
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for entry in source.infolist():
            info = zipfile.ZipInfo(entry.filename, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            target.writestr(info, replace.get(entry.filename, source.read(entry.filename)))
    return out.getvalue()
