"""The export manifest: every file's SHA-256, the control totals, and an Ed25519 signature.

``manifest.json`` is canonical JSON (sorted keys, no whitespace). Its ``signature`` block
names the algorithm (``Ed25519``), the key id and the signer's public key (hex); the
public key is there so an auditor who was given only the key id can still check
(:class:`~fleet.audit.signing.TrustedKeyId`). ``manifest.json.sig`` is one line,
``Ed25519 <key id> <signature hex>``, the signature over the exact manifest bytes. Signing
is deterministic, so a locked period exports byte-identical files every time.

:func:`verify_export` checks the signature against the key the auditor trusts (a public
key file, a key id, or for exports made before Ed25519 the old HMAC key file), every file
against the manifest, files the manifest does not list, and that the control totals equal
what the CSV files add up to. Key files and the key id: :mod:`fleet.audit.signing`.
Manifest version 1 was the HMAC-signed format; version 2 is Ed25519.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fleet.audit.export_csv import INTERVALS, read_csv_totals
from fleet.audit.export_info import CATEGORIES, SIGN_CONVENTION, TOTAL_FIELDS, ExportInfo
from fleet.audit.records import AuditError
from fleet.audit.report import ReconciliationReport, canonical_json, iso, sha256_hex
from fleet.audit.signing import (
    ALGORITHM,
    LEGACY_ALGORITHM,
    SIGNATURE_BYTES,
    HmacKey,
    PublicKey,
    SigningKey,
    Trust,
)

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
SCHEMA = "vendfleet.audit-export"
VERSION = 2
MAX_SIGNATURE_FILE = 4096


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
    public = key.public
    document = {
        **content,
        "content_digest": info.content_digest,
        "signature": {
            "algorithm": ALGORITHM,
            "key_id": public.key_id,
            "public_key": public.raw.hex(),
            "file": SIGNATURE,
        },
        "files": {
            name: {"sha256": sha256_hex(data), "bytes": len(data)}
            for name, data in sorted(files.items())
        },
    }
    manifest = canonical_json(document)
    line = f"{ALGORITHM} {public.key_id} {key.sign(manifest).hex()}\n"
    return manifest, line.encode("ascii")


# -- the signature --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignatureLine:
    """``manifest.json.sig`` as read: algorithm, key id, signature (hex, unchecked)."""

    algorithm: str
    key_id: str
    value: str


def read_signature(folder: Path) -> SignatureLine:
    try:
        with (folder / SIGNATURE).open("rb") as handle:
            text = handle.read(MAX_SIGNATURE_FILE).decode("ascii")
    except (OSError, UnicodeDecodeError):
        raise AuditError(
            f"{SIGNATURE}: missing or unreadable: the manifest is not signed"
        ) from None
    parts = text.split()
    if len(parts) != 3 or parts[0] not in {ALGORITHM, LEGACY_ALGORITHM}:
        raise AuditError(f"{SIGNATURE}: expected '{ALGORITHM} KEY-ID SIGNATURE-HEX'")
    return SignatureLine(*parts)


def _old_format(line: SignatureLine) -> str:
    return (
        f"{SIGNATURE}: an old-format export, signed with {LEGACY_ALGORITHM} (key {line.key_id}) "
        f"before exports were signed with {ALGORITHM}; a public key cannot check it. Verify it "
        "with the secret key file it was made with (`vend audit verify DIR --hmac-key FILE`), "
        f"or export the period again for an {ALGORITHM} signature"
    )


def _carried_key(doc: Any) -> PublicKey | None:
    """The public key the manifest names, if it names a well-formed one."""
    block = doc.get("signature") if isinstance(doc, dict) else None
    text = block.get("public_key") if isinstance(block, dict) else None
    if not isinstance(text, str):
        return None
    try:
        return PublicKey.from_hex(text)
    except AuditError:
        return None


def _ed25519_problems(line: SignatureLine, manifest: bytes, trust: Trust, doc: Any) -> list[str]:
    if isinstance(trust, HmacKey):
        hint = f"an HMAC key cannot check it: give --public-key FILE or --key-id {line.key_id}"
        return [f"{SIGNATURE}: signed with {ALGORITHM} (key {line.key_id}); {hint}"]
    if line.key_id != trust.key_id:
        given = "public key given" if isinstance(trust, PublicKey) else "key id trusted"
        return [f"{SIGNATURE}: signed with key {line.key_id}, the {given} is {trust.key_id}"]
    public = trust if isinstance(trust, PublicKey) else _carried_key(doc)
    if public is None or public.key_id != line.key_id:
        return [f"{MANIFEST}: does not carry the public key of key {line.key_id}"]
    try:
        signature = bytes.fromhex(line.value)
    except ValueError:
        signature = b""
    if len(signature) != SIGNATURE_BYTES or not public.verify(signature, manifest):
        return [f"{MANIFEST}: signature does not match (the manifest or its signature changed)"]
    return []


def _hmac_problems(line: SignatureLine, manifest: bytes, trust: Trust) -> list[str]:
    if not isinstance(trust, HmacKey):
        return [_old_format(line)]
    if line.key_id != trust.key_id:
        return [f"{SIGNATURE}: signed with key {line.key_id}, the HMAC key given is {trust.key_id}"]
    if not hmac.compare_digest(line.value, trust.mac(manifest)):
        return [f"{MANIFEST}: signature does not match (the manifest or its signature changed)"]
    return []


def _block_problems(line: SignatureLine, doc: Any) -> list[str]:
    """The manifest's own record of who signed must agree with the signature file."""
    block = doc.get("signature") if isinstance(doc, dict) else None
    if not isinstance(block, dict):
        return [f"{MANIFEST}: no signature block"]
    named = (block.get("algorithm"), block.get("key_id"))
    if named != (line.algorithm, line.key_id):
        signed = f"{line.algorithm} key {line.key_id}"
        return [f"{MANIFEST}: names {named[0]} key {named[1]}, but {SIGNATURE} is {signed}"]
    return []


def signature_problems(folder: Path, manifest: bytes, trust: Trust, doc: Any) -> list[str]:
    """Whether ``manifest`` (parsed: ``doc``) is signed by the key ``trust`` stands for."""
    try:
        line = read_signature(folder)
    except AuditError as exc:
        return [str(exc)]
    if line.algorithm == LEGACY_ALGORITHM:
        problems = _hmac_problems(line, manifest, trust)
    else:
        problems = _ed25519_problems(line, manifest, trust, doc)
    return problems or _block_problems(line, doc)


# -- verification ---------------------------------------------------------------------


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _parse(manifest: bytes) -> Any:
    try:
        return json.loads(manifest)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _file_problems(folder: Path, listed: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for name, entry in sorted(listed.items()):
        path = folder / name
        if Path(name).name != name or not path.is_file():
            problems.append(f"{name}: listed in the manifest but missing")
        elif not isinstance(entry, dict) or _sha256_file(path) != entry.get("sha256"):
            problems.append(f"{name}: SHA-256 differs from the manifest (changed or replaced)")
    extra = sorted(p.name for p in folder.iterdir() if p.name not in {*listed, MANIFEST, SIGNATURE})
    return problems + [f"{name}: not in the manifest" for name in extra]


def verify_export(folder: Path, trust: Trust) -> list[str]:
    """Every problem found, each naming the file; empty when the export is intact.

    ``trust``: the auditor's :class:`PublicKey`, a :class:`TrustedKeyId` (then the public
    key the manifest carries is used if it has that id), or for an old-format export its
    :class:`HmacKey`."""
    try:
        manifest = (folder / MANIFEST).read_bytes()
    except OSError:
        return [f"{MANIFEST}: missing or unreadable in {folder}"]
    doc = _parse(manifest)
    problems = signature_problems(folder, manifest, trust, doc)
    listed = doc.get("files") if isinstance(doc, dict) else None
    control = doc.get("control_totals") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or not isinstance(listed, dict) or not isinstance(control, dict):
        return [*problems, f"{MANIFEST}: not an export manifest"]
    problems += _file_problems(folder, listed)
    content = {k: v for k, v in doc.items() if k not in {"content_digest", "signature", "files"}}
    try:
        digest = sha256_hex(canonical_json(content))
    except ValueError:  # NaN or infinity: JSON reads them, canonical JSON refuses them
        digest = ""
    if digest != doc.get("content_digest"):
        problems.append(f"{MANIFEST}: content digest does not match its content")
    if INTERVALS in listed and not any(p.startswith(INTERVALS) for p in problems):
        problems += _totals_problems(folder, control)
    return problems


def _mapping(value: Any) -> dict[str, Any]:
    """A JSON object from the manifest, or empty when it is something else (then the
    comparison with the CSV reports the difference)."""
    return value if isinstance(value, dict) else {}


def _totals_problems(folder: Path, control: dict[str, Any]) -> list[str]:
    """Control totals in the manifest against the CSV files, at every grain."""
    try:
        csv_totals = read_csv_totals(folder)
    except AuditError as exc:
        return [str(exc)]
    except csv.Error as exc:
        return [f"{INTERVALS} and the other CSV files: not readable as CSV ({exc})"]
    problems: list[str] = []
    totals = _mapping(control.get("totals"))
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
    by_category = _mapping(control.get("by_category"))
    for grain, keys in _mapping(control.get("keys_per_grain")).items():
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


__all__ = [
    "MANIFEST",
    "SIGNATURE",
    "SignatureLine",
    "SigningKey",
    "build_manifest",
    "control_totals",
    "export_info",
    "read_signature",
    "signature_problems",
    "verify_export",
]
