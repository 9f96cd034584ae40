"""The signed manifest on a small export: what the signature covers, which keys are trusted,
old HMAC-signed exports, and garbage in the manifest or its signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.audit.export_bundle import render_files, write_files
from fleet.audit.manifest import MANIFEST, SIGNATURE, verify_export
from fleet.audit.periods import month_period, reconcile_period
from fleet.audit.records import MachineActivity, ReconcileConfig
from fleet.audit.report import canonical_json, sha256_hex
from fleet.audit.signing import HmacKey, PublicKey, SigningKey, TrustedKeyId
from tests.fleet.audit.test_reconcile import sale

CONFIG = ReconcileConfig(vat_rate_bp=1000)
KEY = SigningKey(bytes(range(32)))
OTHER = SigningKey(bytes(range(1, 33)))
OLD_KEY = HmacKey(bytes.fromhex("ab" * 32))


def _files(key: SigningKey = KEY) -> dict[str, bytes]:
    activity = MachineActivity("vm-1", sales=(sale(1), sale(2)))
    report = reconcile_period([activity], month_period("2026-03", CONFIG.timezone), CONFIG)
    return render_files(report, key, formats=("csv",))


FILES = _files()


@pytest.fixture
def export(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    write_files(folder, FILES)
    return folder


def _old_format(files: dict[str, bytes], key: HmacKey) -> dict[str, bytes]:
    """The same export as signed before Ed25519 (manifest version 1, HMAC-SHA256)."""
    doc = json.loads(files[MANIFEST])
    doc["version"] = 1
    doc["signature"] = {"algorithm": "HMAC-SHA256", "key_id": key.key_id, "file": SIGNATURE}
    content = {k: v for k, v in doc.items() if k not in {"content_digest", "signature", "files"}}
    doc["content_digest"] = sha256_hex(canonical_json(content))
    manifest = canonical_json(doc)
    mac = hmac.new(key.secret, manifest, hashlib.sha256).hexdigest()
    return {**files, MANIFEST: manifest, SIGNATURE: f"HMAC-SHA256 {key.key_id} {mac}\n".encode()}


def test_the_signature_file_names_the_algorithm_and_key_and_signs_the_manifest() -> None:
    algorithm, key_id, value = FILES[SIGNATURE].decode("ascii").split()
    assert FILES[SIGNATURE].endswith(b"\n")
    assert (algorithm, key_id) == ("Ed25519", KEY.public.key_id)
    assert KEY.public.verify(bytes.fromhex(value), FILES[MANIFEST])
    block = json.loads(FILES[MANIFEST])["signature"]
    assert block == {
        "algorithm": "Ed25519",
        "key_id": KEY.public.key_id,
        "public_key": KEY.public.raw.hex(),
        "file": SIGNATURE,
    }
    assert json.loads(FILES[MANIFEST])["version"] == 2
    readme = FILES["README.txt"].decode("utf-8")
    assert f"Ed25519, key {KEY.public.key_id}" in readme


def test_the_same_report_signs_to_the_same_bytes() -> None:
    assert _files() == FILES


def test_an_intact_export_verifies_with_the_public_key_or_its_key_id(export: Path) -> None:
    assert verify_export(export, KEY.public) == []
    assert verify_export(export, TrustedKeyId(KEY.public.key_id)) == []


def test_another_key_is_named(export: Path) -> None:
    expected = f"signed with key {KEY.key_id}, the public key given is {OTHER.key_id}"
    assert verify_export(export, OTHER.public) == [f"{SIGNATURE}: {expected}"]
    trusted = f"signed with key {KEY.key_id}, the key id trusted is {OTHER.key_id}"
    assert verify_export(export, TrustedKeyId(OTHER.key_id)) == [f"{SIGNATURE}: {trusted}"]


def _flip(path: Path, needle: bytes, replacement: bytes) -> None:
    data = path.read_bytes()
    assert needle in data
    path.write_bytes(data.replace(needle, replacement, 1))


def test_a_tampered_manifest_or_signature_fails(export: Path, tmp_path: Path) -> None:
    # changed content that still parses: the digest of one file
    digest = sha256_hex(FILES["README.txt"]).encode()
    _flip(export / MANIFEST, digest, b"0" * 64)
    problems = verify_export(export, KEY.public)
    assert f"{MANIFEST}: signature does not match (the manifest or its signature changed)" in (
        problems
    )
    assert "README.txt: SHA-256 differs from the manifest (changed or replaced)" in problems
    again = tmp_path / "again"
    write_files(again, FILES)
    line = FILES[SIGNATURE].decode("ascii")
    last = "0" if line[-2] != "0" else "1"
    (again / SIGNATURE).write_text(line[:-2] + last + "\n", encoding="ascii")
    assert verify_export(again, KEY.public) == [
        f"{MANIFEST}: signature does not match (the manifest or its signature changed)"
    ]


def test_a_tampered_file_fails_naming_it(export: Path) -> None:
    _flip(export / "discrepancies.csv", b"vm-1", b"vm-2")
    assert verify_export(export, KEY.public) == [
        "discrepancies.csv: SHA-256 differs from the manifest (changed or replaced)"
    ]


def test_a_missing_or_malformed_signature_fails(export: Path) -> None:
    (export / SIGNATURE).unlink()
    assert verify_export(export, KEY.public) == [
        f"{SIGNATURE}: missing or unreadable: the manifest is not signed"
    ]
    (export / SIGNATURE).write_text("Ed25519 only-two\n", encoding="ascii")
    assert verify_export(export, KEY.public) == [
        f"{SIGNATURE}: expected 'Ed25519 KEY-ID SIGNATURE-HEX'"
    ]
    (export / SIGNATURE).write_text(f"Ed25519 {KEY.key_id} zz\n", encoding="ascii")
    assert verify_export(export, KEY.public) == [
        f"{MANIFEST}: signature does not match (the manifest or its signature changed)"
    ]


def test_a_manifest_re_signed_by_someone_else_fails_the_key_id_check(tmp_path: Path) -> None:
    forged = tmp_path / "forged"
    write_files(forged, _files(OTHER))  # a complete, valid export by another key
    assert verify_export(forged, OTHER.public) == []
    assert verify_export(forged, TrustedKeyId(KEY.key_id)) == [
        f"{SIGNATURE}: signed with key {OTHER.key_id}, the key id trusted is {KEY.key_id}"
    ]
    # ... also when the forger claims the trusted key id but can only carry their own key
    line = (forged / SIGNATURE).read_text(encoding="ascii").replace(OTHER.key_id, KEY.key_id)
    (forged / SIGNATURE).write_text(line, encoding="ascii")
    assert verify_export(forged, TrustedKeyId(KEY.key_id)) == [
        f"{MANIFEST}: does not carry the public key of key {KEY.key_id}"
    ]


def test_the_manifest_must_name_the_key_that_signed(tmp_path: Path) -> None:
    doc = json.loads(FILES[MANIFEST])
    doc["signature"]["algorithm"] = "HMAC-SHA256"  # the signed bytes say another algorithm
    manifest = canonical_json(doc)
    line = f"Ed25519 {KEY.key_id} {KEY.sign(manifest).hex()}\n".encode()
    folder = tmp_path / "mixed"
    write_files(folder, {**FILES, MANIFEST: manifest, SIGNATURE: line})
    signed = f"{SIGNATURE} is Ed25519 key {KEY.key_id}"
    assert verify_export(folder, KEY.public) == [
        f"{MANIFEST}: names HMAC-SHA256 key {KEY.key_id}, but {signed}"
    ]


def test_an_old_hmac_export_is_named_and_checks_with_its_secret(tmp_path: Path) -> None:
    old = tmp_path / "old"
    write_files(old, _old_format(FILES, OLD_KEY))
    assert verify_export(old, OLD_KEY) == []
    for trust in (KEY.public, TrustedKeyId(KEY.key_id)):
        (problem,) = verify_export(old, trust)
        assert problem.startswith(f"{SIGNATURE}: an old-format export, signed with HMAC-SHA256")
        assert "--hmac-key FILE" in problem
    wrong = HmacKey(bytes(32))
    assert verify_export(old, wrong) == [
        f"{SIGNATURE}: signed with key {OLD_KEY.key_id}, the HMAC key given is {wrong.key_id}"
    ]
    _flip(old / MANIFEST, b'"version":1', b'"version":3')
    assert f"{MANIFEST}: signature does not match (the manifest or its signature changed)" in (
        verify_export(old, OLD_KEY)
    )


def test_an_ed25519_export_is_not_checked_with_an_hmac_key(export: Path) -> None:
    (problem,) = verify_export(export, OLD_KEY)
    assert problem == (
        f"{SIGNATURE}: signed with Ed25519 (key {KEY.key_id}); an HMAC key cannot check it: "
        f"give --public-key FILE or --key-id {KEY.key_id}"
    )


def test_downgrading_the_signature_to_hmac_does_not_verify(export: Path) -> None:
    # the forger's own HMAC over a changed manifest: the auditor's public key refuses it
    _flip(export / MANIFEST, b'"locked_by":null', b'"locked_by":"x"')
    forged = hmac.new(b"forger", (export / MANIFEST).read_bytes(), hashlib.sha256).hexdigest()
    (export / SIGNATURE).write_text(f"HMAC-SHA256 {KEY.key_id} {forged}\n", encoding="ascii")
    problems = verify_export(export, KEY.public)
    assert problems
    assert "old-format export" in problems[0]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def _manifests() -> st.SearchStrategy[bytes]:
    real = json.loads(FILES[MANIFEST])
    mutated = st.builds(
        lambda key, value: json.dumps({**real, key: value}).encode(),
        st.sampled_from(sorted(real)),
        JSON,
    )
    return st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()) | mutated


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    manifest=_manifests(),
    signature=st.binary(max_size=200) | st.sampled_from([FILES[SIGNATURE], b"HMAC-SHA256 a b"]),
    trust=st.sampled_from([KEY.public, TrustedKeyId(KEY.key_id), OLD_KEY]),
)
def test_garbage_gives_problems_never_an_exception(
    manifest: bytes, signature: bytes, trust: PublicKey | TrustedKeyId | HmacKey
) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name) / "export"
        write_files(folder, {**FILES, MANIFEST: manifest, SIGNATURE: signature})
        problems = verify_export(folder, trust)
    assert problems
    assert all(isinstance(p, str) and p for p in problems)
