"""`vend audit keygen / key-id / export / verify` on the simulated month (SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from fleet.store.db import make_engine
from fleet.store.schema import upgrade
from tests.fleet.audit.month import generate
from tests.fleet.audit.test_month import _load

runner = CliRunner()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("cli-export")
    url = f"sqlite:///{folder / 'fleet.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    _load(engine, generate(), folder)
    engine.dispose()
    return url


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", *args])
    return result.exit_code, result.output


def keygen(folder: Path, name: str = "k") -> Path:
    key = folder / name
    code, out = invoke("keygen", "--out", str(key))
    assert code == 0, out
    return key


def test_keygen_export_verify_and_a_tampered_file(db: str, tmp_path: Path) -> None:
    key = tmp_path / "audit.key"
    code, made = invoke("keygen", "--out", str(key))
    assert code == 0, made
    public = tmp_path / "audit.key.pub"
    assert key.stat().st_mode & 0o077 == 0
    assert key.read_text(encoding="ascii").startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text(encoding="ascii").startswith("-----BEGIN PUBLIC KEY-----")
    code, out = invoke("keygen", "--out", str(key))
    assert code == 1
    assert "already exists" in out
    code, private_id = invoke("key-id", str(key))
    assert code == 0, private_id
    assert invoke("key-id", str(public)) == (0, private_id)
    key_id = private_id.split()[1]
    assert private_id.split()[0] == "Ed25519"
    assert key_id in made  # keygen printed the same id

    folder = tmp_path / "march"
    code, out = invoke("export", "--db", db, "--period", "2026-03", "--format", "all",
                       "--out", str(folder), "--key", str(key))  # fmt: skip
    assert code == 0, out
    assert "NOT locked" in out
    assert f"signed with Ed25519 key {key_id}" in out
    names = {p.name for p in folder.iterdir()}
    assert {"intervals.csv", "rollups.csv", "discrepancies.csv", "README.txt",
            "reconciliation-2026-03.xlsx", "reconciliation-2026-03.pdf",
            "manifest.json", "manifest.json.sig"} == names  # fmt: skip
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["files"]) == names - {"manifest.json", "manifest.json.sig"}

    for trust in (["--public-key", str(public)], ["--key-id", key_id],
                  ["--public-key", str(public), "--key-id", key_id.upper()]):  # fmt: skip
        code, out = invoke("verify", str(folder), *trust)
        assert code == 0, (trust, out)
        assert "OK" in out

    target = folder / "rollups.csv"
    target.write_bytes(target.read_bytes().replace(b",", b";", 1))
    code, out = invoke("verify", str(folder), "--public-key", str(public))
    assert code == 1
    assert "rollups.csv: SHA-256 differs" in out


def test_verify_names_the_wrong_key_and_needs_one(db: str, tmp_path: Path) -> None:
    key, other = keygen(tmp_path, "k"), keygen(tmp_path, "other")
    folder = tmp_path / "out"
    code, out = invoke("export", "--db", db, "--period", "2026-03", "--format", "csv",
                       "--out", str(folder), "--key", str(key))  # fmt: skip
    assert code == 0, out
    code, out = invoke("verify", str(folder), "--public-key", f"{other}.pub")
    assert code == 1
    assert "signed with key" in out
    assert "do not rely on this export" in out
    code, out = invoke("verify", str(folder))
    assert (code, "--public-key FILE or --key-id ID" in out) == (1, True)
    other_id = invoke("key-id", str(other))[1].split()[1]
    code, out = invoke("verify", str(folder), "--public-key", f"{key}.pub", "--key-id", other_id)
    assert (code, f"not {other_id}" in out) == (1, True)
    code, out = invoke("verify", str(folder), "--public-key", str(key))
    assert (code, "this is a private key" in out) == (1, True)
    old = tmp_path / "old.key"
    old.write_text("11" * 32 + "\n", encoding="ascii")
    code, out = invoke("verify", str(folder), "--hmac-key", str(old))
    assert (code, "an HMAC key cannot check it" in out) == (1, True)
    code, out = invoke("verify", str(folder), "--hmac-key", str(old), "--key-id", other_id)
    assert (code, "give it on its own" in out) == (1, True)


def test_only_csv_and_pdf_when_asked(db: str, tmp_path: Path) -> None:
    key = keygen(tmp_path)
    folder = tmp_path / "out"
    code, out = invoke("export", "--db", db, "--period", "2026-03", "--format", "pdf",
                       "--out", str(folder), "--key", str(key))  # fmt: skip
    assert code == 0, out
    names = {p.name for p in folder.iterdir()}
    assert "reconciliation-2026-03.pdf" in names
    assert "intervals.csv" in names  # the data of record is always there
    assert "reconciliation-2026-03.xlsx" not in names
    assert invoke("verify", str(folder), "--public-key", f"{key}.pub")[0] == 0


def test_a_locked_month_exports_identically(db: str, tmp_path: Path) -> None:
    key = keygen(tmp_path)
    code, out = invoke("lock", "--db", db, "--period", "2026-03", "--by", "Lan")
    assert code == 0, out
    outputs = []
    for name in ("one", "two"):
        code, out = invoke("export", "--db", db, "--period", "2026-03", "--out",
                           str(tmp_path / name), "--key", str(key))  # fmt: skip
        assert code == 0, out
        assert "(locked)" in out
        outputs.append({p.name: p.read_bytes() for p in (tmp_path / name).iterdir()})
    assert outputs[0] == outputs[1]


def test_bad_requests_exit_1_with_a_reason(db: str, tmp_path: Path) -> None:
    key = keygen(tmp_path)
    common = ["--db", db, "--out", str(tmp_path / "o"), "--key", str(key)]
    code, out = invoke("export", "--period", "2026-03", "--format", "docx", *common)
    assert (code, "unknown format 'docx'" in out) == (1, True)
    code, out = invoke("export", "--period", "2026-13", *common)
    assert (code, "expected YYYY-MM" in out) == (1, True)
    code, out = invoke("export", "--period", "2026-03", "--db", db, "--out", str(tmp_path),
                       "--key", str(tmp_path / "missing.key"))  # fmt: skip
    assert (code, "cannot read" in out) == (1, True)
    code, out = invoke("verify", str(tmp_path / "nothing"), "--public-key", f"{key}.pub")
    assert (code, "manifest.json: missing" in out) == (1, True)
    old = tmp_path / "old.key"
    old.write_text("33" * 32, encoding="ascii")
    code, out = invoke("export", "--period", "2026-03", "--db", db, "--out", str(tmp_path / "x"),
                       "--key", str(old))  # fmt: skip
    assert (code, "HMAC key file from before" in out) == (1, True)
    key.chmod(0o644)
    code, out = invoke("export", "--period", "2026-03", *common)
    assert (code, "chmod 600" in out) == (1, True)
