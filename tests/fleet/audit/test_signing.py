"""Ed25519 key files for export signing: RFC 8032 vectors, the files keygen writes, the
key id, and clear errors for every key file that is not what was asked for."""

from __future__ import annotations

import contextlib
import hashlib
import stat
import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.audit.records import AuditError
from fleet.audit.signing import (
    PublicKey,
    SigningKey,
    TrustedKeyId,
    load_hmac_key,
    load_public_key,
    load_signing_key,
    public_path_for,
    write_key_pair,
)

# RFC 8032, section 7.1, TEST 1 and TEST 2.
RFC_SECRET_1 = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC_PUBLIC_1 = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC_SIGNATURE_1 = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
RFC_SECRET_2 = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"
RFC_SIGNATURE_2 = (
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
)


def test_rfc_8032_vectors_sign_and_verify() -> None:
    one = SigningKey(bytes.fromhex(RFC_SECRET_1))
    assert one.public.raw.hex() == RFC_PUBLIC_1
    assert one.sign(b"").hex() == RFC_SIGNATURE_1
    two = SigningKey(bytes.fromhex(RFC_SECRET_2))
    assert two.sign(b"\x72").hex() == RFC_SIGNATURE_2
    assert one.public.verify(bytes.fromhex(RFC_SIGNATURE_1), b"")
    assert not one.public.verify(bytes.fromhex(RFC_SIGNATURE_1), b"\x00")
    assert not two.public.verify(bytes.fromhex(RFC_SIGNATURE_1), b"")


def test_the_key_id_is_the_first_128_bits_of_sha256_of_the_public_key() -> None:
    public = bytes.fromhex(RFC_PUBLIC_1)
    assert PublicKey(public).key_id == hashlib.sha256(public).hexdigest()[:32]
    assert SigningKey(bytes.fromhex(RFC_SECRET_1)).key_id == PublicKey(public).key_id
    assert "9d61b19d" not in repr(SigningKey(bytes.fromhex(RFC_SECRET_1)))


def test_keys_of_the_wrong_size_are_refused() -> None:
    with pytest.raises(AuditError, match="32 bytes, not 31"):
        SigningKey(bytes(31))
    with pytest.raises(AuditError, match="32 bytes, not 33"):
        PublicKey(bytes(33))
    with pytest.raises(AuditError, match="expected 64 hex digits"):
        PublicKey.from_hex("zz")


def test_keygen_writes_a_pkcs8_private_key_and_its_public_key(tmp_path: Path) -> None:
    private = tmp_path / "audit.key"
    made = write_key_pair(private)
    public = tmp_path / "audit.key.pub"
    assert public_path_for(private) == public
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    text = private.read_bytes()
    assert text.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    loaded = load_signing_key(private)
    assert loaded == made
    assert load_public_key(public) == made.public
    # readable by any tool, not only by ours
    other = serialization.load_pem_public_key(public.read_bytes())
    assert isinstance(other, Ed25519PublicKey)
    other.verify(loaded.sign(b"manifest"), b"manifest")


def test_keygen_never_overwrites_either_file(tmp_path: Path) -> None:
    private = tmp_path / "k"
    write_key_pair(private)
    before = private.read_bytes()
    with pytest.raises(AuditError, match="already exists; not overwriting a key"):
        write_key_pair(private)
    assert private.read_bytes() == before
    lone = tmp_path / "lone"
    public_path_for(lone).write_text("someone's public key", encoding="ascii")
    with pytest.raises(AuditError, match=r"lone\.pub: already exists"):
        write_key_pair(lone)
    assert not lone.exists()  # no half key pair left behind
    with pytest.raises(AuditError, match="a file of its own"):
        write_key_pair(tmp_path / "same", tmp_path / "same")


def test_a_private_key_others_can_read_is_refused(tmp_path: Path) -> None:
    private = tmp_path / "k"
    write_key_pair(private)
    private.chmod(0o644)
    with pytest.raises(AuditError, match=r"others can read it \(mode 0644\).*chmod 600"):
        load_signing_key(private)


def _write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_each_wrong_kind_of_key_file_gets_its_own_message(tmp_path: Path) -> None:
    write_key_pair(tmp_path / "k")
    private, public = tmp_path / "k", tmp_path / "k.pub"
    hmac_file = _write(tmp_path / "old.key", b"11" * 32 + b"\n")
    with pytest.raises(AuditError, match=r"HMAC key file from before .*vend audit keygen"):
        load_signing_key(hmac_file)
    with pytest.raises(AuditError, match=r"HMAC key file .* --hmac-key"):
        load_public_key(hmac_file)
    with pytest.raises(AuditError, match=r"not a PEM private key \(this is a public key\)"):
        load_signing_key(public)
    with pytest.raises(AuditError, match="this is a private key; verify with the public key"):
        load_public_key(private)
    ed448 = Ed448PrivateKey.generate()
    other = _write(
        tmp_path / "ed448",
        ed448.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    with pytest.raises(AuditError, match="not an Ed25519 key"):
        load_signing_key(other)
    other_public = _write(
        tmp_path / "ed448.pub",
        ed448.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    with pytest.raises(AuditError, match="not an Ed25519 key"):
        load_public_key(other_public)
    locked = _write(
        tmp_path / "locked",
        Ed25519PrivateKey.from_private_bytes(load_signing_key(private).seed).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        ),
    )
    with pytest.raises(AuditError, match="encrypted keys are not supported"):
        load_signing_key(locked)
    with pytest.raises(AuditError, match="cannot read"):
        load_signing_key(tmp_path / "missing")
    big = _write(tmp_path / "big", b"-----BEGIN PRIVATE KEY-----" + b"A" * 70_000)
    with pytest.raises(AuditError, match="not a key file"):
        load_signing_key(big)


def test_old_hmac_key_files_still_load_for_checking_old_exports(tmp_path: Path) -> None:
    key = load_hmac_key(_write(tmp_path / "old", b"ab" * 32 + b"\n"))
    assert key.secret == bytes.fromhex("ab" * 32)
    assert len(key.key_id) == 16
    with pytest.raises(AuditError, match="too short"):
        load_hmac_key(_write(tmp_path / "short", b"abcd"))
    with pytest.raises(AuditError, match="expected hex digits"):
        load_hmac_key(_write(tmp_path / "pem", b"-----BEGIN"))


def test_key_ids_are_read_as_printed() -> None:
    digits = "56475aa75463474c0285df5dbf2bcab7"
    assert TrustedKeyId.parse(digits).key_id == digits
    assert TrustedKeyId.parse(" 56:47:5A:A7 5463474c0285df5dbf2bcab7\n").key_id == digits
    for bad in ("", digits[:-1], digits + "0", "g" * 32):
        with pytest.raises(AuditError, match="expected 32 hex digits"):
            TrustedKeyId.parse(bad)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=600) | st.text(max_size=300).map(str.encode))
def test_any_key_file_content_loads_or_gives_our_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder) / "k", b"-----BEGIN PRIVATE KEY-----\n" + data)
        plain = _write(Path(folder) / "p", data)
        for load in (load_signing_key, load_public_key, load_hmac_key):
            for candidate in (path, plain):
                with contextlib.suppress(AuditError):  # the only error allowed
                    load(candidate)
