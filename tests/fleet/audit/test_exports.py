"""Exports of the simulated month: CSV, XLSX and PDF agree (XLSX read back with openpyxl,
PDF with pypdf), the signed manifest verifies, any changed byte is caught and named, and
a locked month exports the same bytes every time."""

from __future__ import annotations

import csv
import io
import itertools
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pypdf
import pytest
from sqlalchemy import Engine

from fleet.audit import source
from fleet.audit.export_bundle import export_period, parse_formats, render_files, write_files
from fleet.audit.export_info import TOTAL_FIELDS
from fleet.audit.lock import lock_period
from fleet.audit.manifest import MANIFEST, SIGNATURE, verify_export
from fleet.audit.periods import month_period
from fleet.audit.receipts import QueueReceiptSource
from fleet.audit.records import AuditError
from fleet.audit.report import ReconciliationReport
from fleet.audit.report_json import report_from_json
from fleet.audit.signing import SigningKey
from fleet.audit.sites import set_site
from fleet.audit.source import reconcile_from_store
from fleet.store.db import make_engine
from fleet.store.schema import upgrade
from tests.fleet.audit.month import generate
from tests.fleet.audit.test_month import CONFIG, NOW, _load
from tests.support.servers import Postgres

KEY = SigningKey(bytes(range(32)))
PLACE = "Chợ Bến Thành, Quận 1"
PERIOD = month_period("2026-03", CONFIG.timezone)
_names = itertools.count()


@dataclass
class Store:
    engine: Engine
    receipts: QueueReceiptSource
    folder: Path

    def report(self) -> ReconciliationReport:
        return reconcile_from_store(self.engine, PERIOD, CONFIG, receipts=self.receipts)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    folder = tmp_path_factory.mktemp("exports")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'fleet.sqlite'}"
    else:
        server: Postgres = request.getfixturevalue("postgres")
        url = server.create_database(f"audit_exports_{next(_names)}")
    engine = make_engine(url)
    upgrade(engine)
    month = generate()
    _load(engine, month, folder)
    set_site(engine, "vm-0003", PLACE, "Tuyến Sài Gòn")
    yield Store(engine, QueueReceiptSource("VND"), folder)
    engine.dispose()


@pytest.fixture(scope="module")
def exported(store: Store) -> Path:
    out = store.folder / "export"
    write_files(out, render_files(store.report(), KEY))
    return out


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def _csv_totals(folder: Path) -> dict[str, int]:
    rows = _csv(folder / "intervals.csv")
    return {name: sum(int(r[name]) for r in rows) for name in TOTAL_FIELDS}


def test_the_csv_adds_up_at_every_grain(exported: Path) -> None:
    totals = _csv_totals(exported)
    assert totals["telemetry_count"] > 4000  # the month sells: something to add up
    rollups = _csv(exported / "rollups.csv")
    for grain in ("machine", "location", "route", "month", "total"):
        rows = [r for r in rollups if r["grain"] == grain]
        assert rows, grain
        assert {n: sum(int(r[n]) for r in rows) for n in TOTAL_FIELDS} == totals, grain
    found = _csv(exported / "discrepancies.csv")
    assert len(found) == totals["discrepancies"]
    assert sum(int(d["amount"]) for d in found) == totals["discrepancy_net"]
    readme = (exported / "README.txt").read_text(encoding="utf-8")
    assert "currency: VND" in readme
    assert "over = positive, short = negative" in readme
    assert "Asia/Ho_Chi_Minh" in readme


def test_the_workbook_read_by_openpyxl_matches_the_csv(exported: Path) -> None:
    totals = _csv_totals(exported)
    book = openpyxl.load_workbook(exported / "reconciliation-2026-03.xlsx", read_only=True)
    assert {"README", "intervals", "machines", "locations", "routes", "months", "period",
            "discrepancies"} <= set(book.sheetnames)  # fmt: skip
    for name in ("intervals", "machines", "locations", "routes", "months", "period"):
        rows = list(book[name].iter_rows(values_only=True))
        header, last = rows[0], rows[-1]
        assert "TOTAL" in last, name
        for field in TOTAL_FIELDS:
            column = header.index(field)
            assert last[column] == totals[field], (name, field)
            values = [r[column] for r in rows[1:-1]]
            assert all(isinstance(v, int) for v in values), (name, field)
            assert sum(v for v in values if isinstance(v, int)) == totals[field], (name, field)
    found = list(book["discrepancies"].iter_rows(values_only=True))
    assert len(found) - 2 == totals["discrepancies"]
    book.close()
    sheet = openpyxl.load_workbook(exported / "reconciliation-2026-03.xlsx")["machines"]
    assert sheet.freeze_panes == "A2"
    assert sheet["D2"].number_format == "#,##0;-#,##0;0"


def _pdf_text(path: Path) -> str:
    reader = pypdf.PdfReader(path)
    return "\n".join(page.extract_text() for page in reader.pages)


def test_the_pdf_read_by_pypdf_matches_the_csv(exported: Path) -> None:
    totals = _csv_totals(exported)
    text = _pdf_text(exported / "reconciliation-2026-03.pdf")
    section = text.split("Control totals (period)", 1)[1].split("Discrepancies by category")[0]
    printed = {
        name: int(value.replace(",", ""))
        for name, value in re.findall(r"^([a-z_]+) (-?[\d,]+)$", section, flags=re.MULTILINE)
    }
    assert {k: printed[k] for k in TOTAL_FIELDS} == totals
    pages = len(pypdf.PdfReader(exported / "reconciliation-2026-03.pdf").pages)
    assert pages > 1
    assert f"page {pages} of {pages}" in text
    assert PLACE in text  # Vietnamese renders (and extracts) as text
    assert "over = positive, short = negative" in text
    manifest = (exported / MANIFEST).read_text(encoding="utf-8")
    digest = re.search(r'"content_digest":"([0-9a-f]{64})"', manifest)
    assert digest is not None
    assert digest.group(1) in text
    assert f"Ed25519, key fingerprint {KEY.key_id}" in text  # for sign-off on paper


def test_an_intact_export_verifies(exported: Path) -> None:
    assert verify_export(exported, KEY.public) == []


@pytest.mark.parametrize(
    "name",
    ["intervals.csv", "rollups.csv", "discrepancies.csv", "README.txt",
     "reconciliation-2026-03.xlsx", "reconciliation-2026-03.pdf", MANIFEST, SIGNATURE],
)  # fmt: skip
def test_one_changed_byte_fails_verification_naming_the_file(
    exported: Path, tmp_path: Path, name: str
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / name).write_bytes(bytes(data))
    problems = verify_export(copy, KEY.public)
    named = MANIFEST if name == SIGNATURE else name
    assert any(named in p for p in problems), problems


def test_unlisted_files_and_another_key_are_reported(exported: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    (copy / "extra.txt").write_text("note", encoding="utf-8")
    problems = verify_export(copy, KEY.public)
    assert problems == ["extra.txt: not in the manifest"]
    other = SigningKey(b"another key, 32 bytes long......")
    assert any("signed with key" in p for p in verify_export(exported, other.public))


def test_a_locked_month_exports_the_same_bytes_again(store: Store, tmp_path: Path) -> None:
    lock = lock_period(store.engine, PERIOD, CONFIG, by="Lan", now=NOW, receipts=store.receipts)
    first = export_period(store.engine, PERIOD, CONFIG, tmp_path / "a", KEY,
                          receipts=store.receipts)  # fmt: skip
    set_site(store.engine, "vm-0004", "moved", "elsewhere")  # late change: ignored once locked
    second = export_period(store.engine, PERIOD, CONFIG, tmp_path / "b", KEY,
                           receipts=store.receipts)  # fmt: skip
    assert first.locked
    assert second.locked
    for name in first.files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert first.manifest_sha256 == second.manifest_sha256
    manifest = (tmp_path / "a" / MANIFEST).read_text(encoding="utf-8")
    assert lock.sha256 in manifest
    assert '"locked_by":"Lan"' in manifest
    assert verify_export(tmp_path / "b", KEY.public) == []


def test_the_locked_json_reads_back_to_the_same_bytes(store: Store) -> None:
    data = store.report().to_canonical_json()
    assert report_from_json(data).to_canonical_json() == data
    with pytest.raises(AuditError, match="not a reconciliation report"):
        report_from_json(b"\xff not json")
    with pytest.raises(AuditError, match=r"vendfleet\.reconciliation"):
        report_from_json(b'{"schema": "other"}')


def test_small_batches_give_the_same_report(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = store.report().to_canonical_json()
    monkeypatch.setattr(source, "BATCH_MACHINES", 3)
    monkeypatch.setattr(source, "BATCH_SALES", 500)
    assert store.report().to_canonical_json() == whole


def test_formats_and_folders_are_checked(tmp_path: Path) -> None:
    assert parse_formats(["pdf"]) == ("csv", "pdf")
    assert parse_formats(["all"]) == ("csv", "xlsx", "pdf")
    with pytest.raises(AuditError, match="unknown format 'docx'"):
        parse_formats(["xlsx,docx"])
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "other.txt").write_text("x", encoding="utf-8")
    with pytest.raises(AuditError, match="holds other files"):
        write_files(busy, {"a.csv": b""})
    assert verify_export(tmp_path / "nowhere", KEY.public) == [
        f"{MANIFEST}: missing or unreadable in {tmp_path / 'nowhere'}"
    ]


def test_an_unlocked_export_is_dated_with_the_period_end(store: Store) -> None:
    files = render_files(store.report(), KEY, formats=("csv",))
    assert set(files) == {"README.txt", "intervals.csv", "rollups.csv", "discrepancies.csv",
                          MANIFEST, SIGNATURE}  # fmt: skip
    assert b'"issued_at":"2026-03-31T17:00:00Z"' in files[MANIFEST]
    assert b'"locked_by":null' in files[MANIFEST]
    assert datetime(2026, 3, 31, 17, tzinfo=UTC) == PERIOD.end
