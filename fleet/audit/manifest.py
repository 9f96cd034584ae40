"""The export manifest: every file's SHA-256, the control totals, and a signature.

``manifest.json`` is canonical JSON (sorted keys, no whitespace); ``manifest.json.sig``
holds ``HMAC-SHA256 <key id> <hex>`` over its bytes, made with the operator's secret key
file. (HMAC, not a public-key signature: no public-key library is installed, so whoever
verifies needs the same key file; see docs/auditing.md.) :func:`verify_export` checks the
signature, every file against the manifest, files the manifest does not list, and that
the control totals equal what the CSV files add up to.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fleet.audit.export_csv import INTERVALS, read_csv_totals
from fleet.audit.export_info import CATEGORIES, SIGN_CONVENTION, TOTAL_FIELDS, ExportInfo
from fleet.audit.records import AuditError
from fleet.audit.report import ReconciliationReport, canonical_json, iso, sha256_hex

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
SCHEMA = "vendfleet.audit-export"
VERSION = 1
ALGORITHM = "HMAC-SHA256"
_KEY_LABEL = b"vendfleet audit key\x00"


@dataclass(frozen=True, slots=True)
class SigningKey:
    secret: bytes

    @property
    def key_id(self) -> str:
        """A fingerprint that names the key without giving it away."""
        return hashlib.sha256(_KEY_LABEL + self.secret).hexdigest()[:16]

    def sign(self, data: bytes) -> str:
        return hmac.new(self.secret, data, hashlib.sha256).hexdigest()


def new_key_text() -> str:
    return secrets.token_hex(32) + "\n"


def write_new_key(path: Path) -> SigningKey:
    """A fresh 256-bit key in ``path`` (hex, readable by its owner only); never overwrites."""
    text = new_key_text()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise AuditError(f"{path}: already exists; not overwriting a key") from None
    except OSError as exc:
        raise AuditError(f"{path}: cannot create ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
    return SigningKey(bytes.fromhex(text.strip()))


def load_key(path: Path) -> SigningKey:
    """A key file as `keygen` writes it: 64 hex digits (32 bytes) on one line."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(f"key file {path}: cannot read ({exc})") from None
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise AuditError(
            f"key file {path}: expected hex digits (see `vend audit keygen`)"
        ) from None
    if len(secret) < 16:
        raise AuditError(f"key file {path}: {len(secret)} bytes is too short (at least 16)")
    return SigningKey(secret)


# -- content --------------------------------------------------------------------------


def control_totals(report: ReconciliationReport) -> dict[str, Any]:
    total = report.total
    return {
        "intervals": len(report.rows),
        "totals": total.totals.to_dict(),
        "discrepancies": len(report.discrepancies),
        "by_category": dict(sorted(total.by_category.items())),
        "keys_per_grain": {grain: len(items) for grain, items in report.rollups.items()},
    }


def _content(report: ReconciliationReport, report_sha256: str, issued_at: datetime,
             locked_by: str | None) -> dict[str, Any]:  # fmt: skip
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "period": {
            "label": report.label,
            "start": iso(report.start),
            "end": iso(report.end),
            "timezone": report.timezone,
        },
        "currency": report.currency,
        "money": "integer minor units",
        "sign_convention": SIGN_CONVENTION,
        "report_sha256": report_sha256,
        "issued_at": iso(issued_at),
        "locked_by": locked_by,
        "control_totals": control_totals(report),
    }


def export_info(
    report: ReconciliationReport,
    key: SigningKey,
    *,
    report_sha256: str,
    issued_at: datetime,
    locked_by: str | None,
) -> ExportInfo:
    content = _content(report, report_sha256, issued_at, locked_by)
    return ExportInfo(
        report_sha256=report_sha256,
        issued_at=issued_at,
        locked_by=locked_by,
        content_digest=sha256_hex(canonical_json(content)),
        key_id=key.key_id,
        algorithm=ALGORITHM,
    )


def build_manifest(
    report: ReconciliationReport, info: ExportInfo, files: dict[str, bytes], key: SigningKey
) -> tuple[bytes, bytes]:
    """(manifest.json bytes, manifest.json.sig bytes) for ``files`` (name -> content)."""
    content = _content(report, info.report_sha256, info.issued_at, info.locked_by)
    document = {
        **content,
        "content_digest": info.content_digest,
        "signature": {"algorithm": ALGORITHM, "key_id": key.key_id, "file": SIGNATURE},
        "files": {
            name: {"sha256": sha256_hex(data), "bytes": len(data)}
            for name, data in sorted(files.items())
        },
    }
    manifest = canonical_json(document)
    return manifest, f"{ALGORITHM} {key.key_id} {key.sign(manifest)}\n".encode("ascii")


# -- verification ---------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _signature_problems(folder: Path, manifest: bytes, key: SigningKey) -> list[str]:
    try:
        parts = (folder / SIGNATURE).read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return [f"{SIGNATURE}: missing or unreadable: the manifest is not signed"]
    if len(parts) != 3 or parts[0] != ALGORITHM:
        return [f"{SIGNATURE}: expected '{ALGORITHM} KEY-ID HEX'"]
    _, key_id, signature = parts
    if key_id != key.key_id:
        return [f"{SIGNATURE}: signed with key {key_id}, the key given is {key.key_id}"]
    if not hmac.compare_digest(signature, key.sign(manifest)):
        return [f"{MANIFEST}: signature does not match (the manifest or its signature changed)"]
    return []


def verify_export(folder: Path, key: SigningKey) -> list[str]:
    """Every problem found, each naming the file; empty when the export is intact."""
    try:
        manifest = (folder / MANIFEST).read_bytes()
    except OSError:
        return [f"{MANIFEST}: missing or unreadable in {folder}"]
    problems = _signature_problems(folder, manifest, key)
    try:
        doc = json.loads(manifest)
        listed: dict[str, dict[str, Any]] = doc["files"]
        control: dict[str, Any] = doc["control_totals"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        return [*problems, f"{MANIFEST}: not an export manifest"]
    for name, entry in sorted(listed.items()):
        path = folder / name
        if Path(name).name != name or not path.is_file():
            problems.append(f"{name}: listed in the manifest but missing")
        elif _sha256_file(path) != entry.get("sha256"):
            problems.append(f"{name}: SHA-256 differs from the manifest (changed or replaced)")
    extra = sorted(p.name for p in folder.iterdir() if p.name not in {*listed, MANIFEST, SIGNATURE})
    problems += [f"{name}: not in the manifest" for name in extra]
    content = {k: v for k, v in doc.items() if k not in {"content_digest", "signature", "files"}}
    if sha256_hex(canonical_json(content)) != doc.get("content_digest"):
        problems.append(f"{MANIFEST}: content digest does not match its content")
    if INTERVALS in listed and not any(p.startswith(INTERVALS) for p in problems):
        problems += _totals_problems(folder, control)
    return problems


def _totals_problems(folder: Path, control: dict[str, Any]) -> list[str]:
    """Control totals in the manifest against the CSV files, at every grain."""
    try:
        csv_totals = read_csv_totals(folder)
    except AuditError as exc:
        return [str(exc)]
    problems: list[str] = []
    totals: dict[str, int] = control.get("totals", {})
    if csv_totals.rows != control.get("intervals"):
        problems.append(
            f"{INTERVALS}: {csv_totals.rows} rows, manifest says {control.get('intervals')}"
        )
    problems += [
        f"{INTERVALS}: {name} adds up to {csv_totals.intervals[name]}, "
        f"manifest says {totals.get(name)}"
        for name in TOTAL_FIELDS
        if csv_totals.intervals[name] != totals.get(name)
    ]
    by_category: dict[str, int] = control.get("by_category", {})
    for grain, keys in control.get("keys_per_grain", {}).items():
        sums = csv_totals.grains.get(grain, {})
        if csv_totals.grain_rows.get(grain, 0) != keys:
            problems.append(f"rollups.csv: grain {grain} has {csv_totals.grain_rows.get(grain, 0)} "
                            f"rows, manifest says {keys}")  # fmt: skip
        wrong = [name for name in TOTAL_FIELDS if sums.get(name) != totals.get(name)]
        wrong += [c for c in CATEGORIES if sums.get(f"net_{c}", 0) != by_category.get(c, 0)]
        if sums.get("rows") != control.get("intervals"):
            wrong.append("rows")
        if wrong:
            problems.append(f"rollups.csv: grain {grain} does not add up to the control totals "
                            f"({', '.join(wrong)})")  # fmt: skip
    if csv_totals.discrepancies != control.get("discrepancies"):
        problems.append(f"discrepancies.csv: {csv_totals.discrepancies} rows, manifest says "
                        f"{control.get('discrepancies')}")  # fmt: skip
    if csv_totals.by_category != by_category:
        problems.append("discrepancies.csv: amounts by category differ from the manifest")
    return problems
