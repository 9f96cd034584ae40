"""PDF export: a paginated summary for sign-off.

Period, currency and sign convention; the control totals; discrepancies by category; the
line items per machine, location, route, month and for the period, each table with a
totals row; a sign-off block with the report digest, the manifest's content digest and
the signing key's fingerprint. Every page says "page x of y". Text is UTF-8 (Vietnamese
place names render) in DejaVu Sans, which must be installed (Debian: fonts-dejavu-core).
The document is dated with the export's one timestamp, so it is reproducible.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF

from fleet.audit.export_info import GRAIN_NAMES, SIGN_CONVENTION, TOTAL_FIELDS, ExportInfo
from fleet.audit.export_info import period_lines as facts
from fleet.audit.records import AuditError
from fleet.audit.report import ReconciliationReport, Rollup

FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/local/share/fonts",
)
FONT_ENV = "VEND_PDF_FONT_DIR"
_FAMILY = "DejaVu"
# The grain tables' columns: (heading, Totals field or a derived key, width in mm)
_COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("rows", "rows", 12),
    ("telemetry", "telemetry_value", 25),
    ("DEX paid", "dex_paid", 25),
    ("cash expected", "cash_expected", 25),
    ("cash counted", "cash_counted", 25),
    ("over/short", "cash_over_short", 22),
    ("settled", "settled_gross", 25),
    ("receipts", "receipts_value", 25),
    ("issues", "discrepancies", 14),
    ("net", "discrepancy_net", 22),
)
_KEY_WIDTH = 47.0
_LINE = 5.0


def find_font_dir() -> Path:
    """The folder with DejaVuSans.ttf and DejaVuSans-Bold.ttf."""
    candidates = [os.environ[FONT_ENV]] if os.environ.get(FONT_ENV) else []
    for folder in (*candidates, *FONT_DIRS):
        path = Path(folder)
        if (path / "DejaVuSans.ttf").is_file() and (path / "DejaVuSans-Bold.ttf").is_file():
            return path
    raise AuditError(
        "PDF export needs the DejaVu Sans font (DejaVuSans.ttf, DejaVuSans-Bold.ttf) for "
        "Vietnamese text: install the Debian package fonts-dejavu-core, or set "
        f"{FONT_ENV} to a folder holding those files"
    )


class _Summary(FPDF):
    def __init__(self, heading: str) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.heading = heading
        self.set_auto_page_break(auto=True, margin=15)
        self.set_margins(10, 10, 10)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(_FAMILY, size=8)
        self.cell(0, 6, f"{self.heading} - page {self.page_no()} of {{nb}}", align="C")


def _money(value: int) -> str:
    return f"{value:,}"


def _title(pdf: _Summary, text: str) -> None:
    if pdf.will_page_break(4 * _LINE):
        pdf.add_page()
    pdf.ln(2)
    pdf.set_font(_FAMILY, "B", 12)
    pdf.cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FAMILY, size=8)


def _pairs(pdf: _Summary, rows: Sequence[tuple[str, str]], width: float = 50) -> None:
    for label, value in rows:
        pdf.set_font(_FAMILY, "B", 8)
        pdf.cell(width, _LINE, label)
        pdf.set_font(_FAMILY, size=8)
        pdf.cell(0, _LINE, value, new_x="LMARGIN", new_y="NEXT")


def _row(pdf: _Summary, cells: Sequence[str], widths: Sequence[float], *, bold: bool) -> None:
    pdf.set_font(_FAMILY, "B" if bold else "", 8)
    for index, (text, width) in enumerate(zip(cells, widths, strict=True)):
        pdf.cell(width, _LINE, text, border="B" if bold else 0, align="L" if index == 0 else "R")
    pdf.ln(_LINE)


def _grain_table(pdf: _Summary, name: str, items: Sequence[Rollup]) -> None:
    _title(pdf, f"By {name}")
    widths = [_KEY_WIDTH, *(w for _, _, w in _COLUMNS)]
    header = [name, *(h for h, _, _ in _COLUMNS)]
    _row(pdf, header, widths, bold=True)
    sums: Counter[str] = Counter()
    for item in items:
        if pdf.will_page_break(_LINE):
            pdf.add_page()
            _row(pdf, header, widths, bold=True)
        values = {"rows": item.rows, **item.totals.to_dict()}
        sums.update(values)
        _row(pdf, [item.key, *(_money(values[f]) for _, f, _ in _COLUMNS)], widths, bold=False)
    _row(pdf, ["TOTAL", *(_money(sums[f]) for _, f, _ in _COLUMNS)], widths, bold=True)


def pdf_bytes(
    report: ReconciliationReport, info: ExportInfo, *, font_dir: Path | None = None
) -> bytes:
    folder = font_dir or find_font_dir()
    pdf = _Summary(f"Reconciliation {report.label} ({report.currency})")
    pdf.add_font(_FAMILY, "", str(folder / "DejaVuSans.ttf"))
    pdf.add_font(_FAMILY, "B", str(folder / "DejaVuSans-Bold.ttf"))
    pdf.set_creation_date(info.issued_at)
    pdf.set_creator("vendfleet")
    pdf.set_title(f"Reconciliation {report.label}")
    pdf.add_page()
    pdf.set_font(_FAMILY, "B", 16)
    pdf.cell(0, 10, f"Reconciliation {report.label}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FAMILY, size=8)
    _pairs(pdf, facts(report, info))
    pdf.multi_cell(
        0,
        _LINE,
        f"Amounts are integers in minor units of {report.currency}. Sign convention: "
        f"{SIGN_CONVENTION}: a positive amount is more money (or more documented sales) "
        "than expected, a negative one less.",
        new_x="LMARGIN",
        new_y="NEXT",
    )

    total = report.total
    _title(pdf, "Control totals (period)")
    _pairs(
        pdf,
        [("intervals", _money(len(report.rows)))]
        + [(name, _money(value)) for name, value in total.totals.to_dict().items()],
    )

    _title(pdf, "Discrepancies by category")
    counts = Counter(d.category.value for d in report.discrepancies)
    widths = [80.0, 25.0, 35.0]
    _row(pdf, ["category", "count", "net amount"], widths, bold=True)
    for category, amount in sorted(total.by_category.items()):
        _row(pdf, [category, _money(counts[category]), _money(amount)], widths, bold=False)
    _row(
        pdf,
        ["TOTAL", _money(sum(counts.values())), _money(total.totals.discrepancy_net)],
        widths,
        bold=True,
    )

    for grain, items in report.rollups.items():
        _grain_table(pdf, GRAIN_NAMES.get(grain, grain), items)

    _title(pdf, "Sign-off")
    _pairs(
        pdf,
        [
            ("report sha256", info.report_sha256),
            ("manifest content digest", info.content_digest),
            ("signature", f"{info.algorithm}, key fingerprint {info.key_id}"),
            ("files", "see manifest.json and manifest.json.sig beside this PDF"),
        ],
    )
    pdf.ln(6)
    for label in ("Reviewed by", "Signature", "Date"):
        pdf.cell(30, 8, f"{label}:")
        pdf.cell(100, 8, "", border="B", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    return bytes(pdf.output())


__all__ = ["TOTAL_FIELDS", "find_font_dir", "pdf_bytes"]
