"""Keys for signing audit exports: Ed25519 key pairs, and the old HMAC keys (check only).

The operator signs with a private key; the auditor checks with the public key alone, so
whoever can verify an export cannot forge one.

- Private key file: PEM, PKCS#8, unencrypted, mode 0600 (``vend audit keygen --out FILE``).
  Loading refuses a file that others can read, as ssh does.
- Public key file: PEM SubjectPublicKeyInfo, written next to it as ``FILE.pub``.
- Key id: the first 128 bits of SHA-256 over the raw 32-byte public key, 32 lowercase hex
  digits. It is printed on the PDF and in the manifest so a reader can check on paper
  which key signed; 128 bits keeps finding another key with the same id out of reach, so
  a trusted key id is as good as the public key file (see :class:`TrustedKeyId`).
- Signature line (``manifest.json.sig``): ``Ed25519 <key id> <128 hex digits>`` and a
  newline; the signature is over the exact bytes of ``manifest.json``.

Exports made before Ed25519 carry ``HMAC-SHA256 <key id> <64 hex digits>`` made with a
shared secret key file (64 hex digits). :class:`HmacKey` still checks those, and only
those: nothing is signed with HMAC any more, and the algorithm named in the signature
file must match the kind of key the verifier trusts, so a signature cannot be downgraded.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fleet.audit.records import AuditError

ALGORITHM = "Ed25519"
LEGACY_ALGORITHM = "HMAC-SHA256"
KEY_BYTES = 32
SIGNATURE_BYTES = 64
KEY_ID_DIGITS = 32
PUBLIC_SUFFIX = ".pub"
MAX_KEY_FILE = 64 * 1024  # a PEM key is a few hundred bytes; anything big is not a key
_HMAC_LABEL = b"vendfleet audit key\x00"
_HMAC_MIN_BYTES = 16


def key_id_of(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:KEY_ID_DIGITS]


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key (the raw 32 bytes): checks signatures, cannot make them."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != KEY_BYTES:
            raise AuditError(f"an Ed25519 public key has {KEY_BYTES} bytes, not {len(self.raw)}")

    @classmethod
    def from_hex(cls, text: str) -> PublicKey:
        try:
            return cls(bytes.fromhex(text))
        except ValueError:
            raise AuditError(
                f"public key {text[:80]!r}: expected {2 * KEY_BYTES} hex digits"
            ) from None

    @property
    def key_id(self) -> str:
        return key_id_of(self.raw)

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def pem(self) -> bytes:
        return Ed25519PublicKey.from_public_bytes(self.raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 private key, kept as its 32-byte seed (never shown in a repr)."""

    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.seed) != KEY_BYTES:
            raise AuditError(f"an Ed25519 private key has {KEY_BYTES} bytes, not {len(self.seed)}")

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate().private_bytes_raw())

    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public(self) -> PublicKey:
        return PublicKey(self._private().public_key().public_bytes_raw())

    @property
    def key_id(self) -> str:
        return self.public.key_id

    def sign(self, data: bytes) -> bytes:
        """64 bytes; Ed25519 is deterministic, so the same data always signs the same."""
        return self._private().sign(data)

    def pem(self) -> bytes:
        return self._private().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@dataclass(frozen=True, slots=True)
class TrustedKeyId:
    """Trust the public key a manifest carries if, and only if, it has this key id."""

    key_id: str

    @classmethod
    def parse(cls, text: str) -> TrustedKeyId:
        """As printed (32 hex digits); spaces and colons between digit groups are allowed."""
        digits = text.strip().lower().replace(":", "").replace(" ", "")
        if len(digits) != KEY_ID_DIGITS or any(c not in "0123456789abcdef" for c in digits):
            raise AuditError(f"key id {text[:80]!r}: expected {KEY_ID_DIGITS} hex digits")
        return cls(digits)


@dataclass(frozen=True, slots=True)
class HmacKey:
    """The shared secret of an export made before Ed25519; used to check those only."""

    secret: bytes = field(repr=False)

    @property
    def key_id(self) -> str:
        return hashlib.sha256(_HMAC_LABEL + self.secret).hexdigest()[:16]

    def mac(self, data: bytes) -> str:
        return hmac.new(self.secret, data, hashlib.sha256).hexdigest()


Trust = PublicKey | TrustedKeyId | HmacKey


# -- files ----------------------------------------------------------------------------


def public_path_for(private_path: Path) -> Path:
    return private_path.with_name(private_path.name + PUBLIC_SUFFIX)


def _create(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise AuditError(f"{path}: already exists; not overwriting a key") from None
    except OSError as exc:
        raise AuditError(f"{path}: cannot create ({exc.strerror})") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def write_key_pair(private_path: Path, public_path: Path | None = None) -> SigningKey:
    """A new key pair: the private key in ``private_path`` (0600), the public key in
    ``public_path`` (default: the same name plus ``.pub``). Never overwrites either."""
    public_path = public_path or public_path_for(private_path)
    if public_path == private_path:
        raise AuditError(f"{private_path}: the public key needs a file of its own")
    for path in (private_path, public_path):
        if path.exists():
            raise AuditError(f"{path}: already exists; not overwriting a key")
    key = SigningKey.generate()
    _create(private_path, key.pem(), 0o600)
    try:
        _create(public_path, key.public.pem(), 0o644)
    except AuditError:
        private_path.unlink()  # half a key pair is worse than none
        raise
    return key


def _read(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise AuditError(f"{what} {path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_KEY_FILE:
        raise AuditError(f"{what} {path}: over {MAX_KEY_FILE} bytes, not a key file")
    return data


def _looks_like_hmac(data: bytes) -> bool:
    text = data.strip()
    return bool(text) and all(c in b"0123456789abcdefABCDEF" for c in text)


def _private_mode_problem(path: Path) -> str | None:
    if os.name != "posix":
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return f"others can read it (mode {mode:04o}); run `chmod 600 {path}`"
    return None


def load_signing_key(path: Path) -> SigningKey:
    """The private key file `vend audit keygen` wrote."""
    data = _read(path, "private key")
    if _looks_like_hmac(data):
        raise AuditError(
            f"private key {path}: an HMAC key file from before exports were signed with "
            f"Ed25519; make a key pair with `vend audit keygen --out NEW-FILE` and give the "
            f"auditor NEW-FILE{PUBLIC_SUFFIX}"
        )
    if b"PRIVATE KEY" not in data:
        hint = " (this is a public key)" if b"PUBLIC KEY" in data else ""
        raise AuditError(f"private key {path}: not a PEM private key{hint}")
    try:
        loaded = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise AuditError(f"private key {path}: encrypted keys are not supported") from None
    except (ValueError, UnsupportedAlgorithm):
        raise AuditError(f"private key {path}: not a readable PEM PKCS#8 key") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise AuditError(f"private key {path}: not an Ed25519 key (see `vend audit keygen`)")
    problem = _private_mode_problem(path)
    if problem:
        raise AuditError(f"private key {path}: {problem}")
    return SigningKey(loaded.private_bytes_raw())


def load_public_key(path: Path) -> PublicKey:
    """A public key file (PEM SubjectPublicKeyInfo), as `keygen` writes next to the key."""
    data = _read(path, "public key")
    if b"PRIVATE KEY" in data:
        raise AuditError(
            f"public key {path}: this is a private key; verify with the public key file "
            f"(`{path.name}{PUBLIC_SUFFIX}` from keygen) and keep the private one secret"
        )
    if _looks_like_hmac(data):
        raise AuditError(
            f"public key {path}: an HMAC key file from before Ed25519; it checks old-format "
            "exports only, with --hmac-key"
        )
    try:
        loaded = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise AuditError(f"public key {path}: not a readable PEM public key") from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise AuditError(f"public key {path}: not an Ed25519 key")
    return PublicKey(loaded.public_bytes_raw())


def load_hmac_key(path: Path) -> HmacKey:
    """An old HMAC key file: hex digits (at least 16 bytes) on one line."""
    data = _read(path, "HMAC key")
    try:
        secret = bytes.fromhex(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise AuditError(
            f"HMAC key {path}: expected hex digits (the key file of an export made before Ed25519)"
        ) from None
    if len(secret) < _HMAC_MIN_BYTES:
        raise AuditError(
            f"HMAC key {path}: {len(secret)} bytes is too short (at least {_HMAC_MIN_BYTES})"
        )
    return HmacKey(secret)
