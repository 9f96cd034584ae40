"""Mosquitto 2 configuration for a fleet: ``mosquitto.conf``, ``passwd`` and ``acl``.

Operators keep a ``machines.csv`` (``machine_id``, ``password``, optional ``cert_cn``);
this module turns it into the three files the broker reads, so the topic rules in
:mod:`protocols.telemetry.topics` and the broker's access rules cannot drift apart.

Access, per user:

- a machine may publish only its own telemetry kinds (``vend/v1/<id>/<kind>``) and read
  only the commands addressed to it (``vend/v1/<id>/cmd/<name>``). It may not publish
  commands, not even to itself, nor anything under another machine's id;
- the fleet user reads every machine's subtree (telemetry and commands, also through MQTT 5
  shared subscriptions) and publishes commands. Publishing telemetry is off unless asked
  for (re-injecting quarantined messages, clearing a retired machine's retained status,
  load tests);
- nobody else: anonymous clients are refused.

Passwords are stored the way Mosquitto 2's ``mosquitto_passwd`` writes them:
``user:$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>`` with a 12-byte salt
and a 64-byte hash. The ``password`` column may hold such a hash (or the older ``$6$``
salted SHA-512 form) instead of the clear text; it is then copied as it is.

With TLS a second listener asks every client for a certificate signed by the given CA and
takes the certificate's CN as the username, so a machine with a ``cert_cn`` needs no
password there; its CN gets the same rules as its machine id.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import hmac
import io
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from protocols.telemetry import Kind
from protocols.telemetry.codec import MAX_PAYLOAD_BYTES
from protocols.telemetry.fields import MACHINE_ID_PATTERN, is_machine_id
from protocols.telemetry.topics import COMMAND_LEVEL, ROOT, VERSION

PBKDF2_ITERATIONS = 101  # what mosquitto_passwd 2.0 writes; the broker reads any count
SALT_BYTES = 12  # Mosquitto 2.0 refuses other salt lengths
HASH_BYTES = 64  # SHA-512
# Topic, properties and fixed header on top of the largest payload the fleet decodes:
# bigger packets are refused by the broker (and the sender disconnected) before anyone
# spends a database row on them.
PACKET_HEADROOM = 16 * 1024
MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + PACKET_HEADROOM
COLUMNS = ("machine_id", "password", "cert_cn")
REQUIRED_COLUMNS = ("machine_id", "password")
CN_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$"
_CN = re.compile(CN_PATTERN)
_B64 = r"[A-Za-z0-9+/]+={0,2}"
_PBKDF2_HASH = re.compile(rf"^\$7\$([1-9][0-9]{{0,8}})\$({_B64})\$({_B64})$")
_SHA512_HASH = re.compile(rf"^\$6\$({_B64})\$({_B64})$")
_SECRET_MODE = 0o600
_PUBLIC_MODE = 0o644

CONF_FILE = "mosquitto.conf"
PASSWD_FILE = "passwd"  # noqa: S105  (a file name)
ACL_FILE = "acl"
# Only when the password was generated here.
FLEET_PASSWORD_FILE = "fleet.password"  # noqa: S105  (a file name)
SECRET_FILES = frozenset({PASSWD_FILE, FLEET_PASSWORD_FILE})


class BrokerConfigError(ValueError):
    """machines.csv or the options cannot make a working broker configuration.

    ``problems`` lists every problem found, each naming its line where there is one.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


# --- passwords --------------------------------------------------------------------------


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """The ``$7$`` form Mosquitto 2 reads: PBKDF2-HMAC-SHA512 over the UTF-8 password."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    if len(salt) != SALT_BYTES:
        raise BrokerConfigError([f"salt must be {SALT_BYTES} bytes, got {len(salt)}"])
    if iterations < 1:
        raise BrokerConfigError([f"iterations must be at least 1, got {iterations}"])
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def is_password_hash(text: str) -> bool:
    """Whether ``text`` is a hash Mosquitto 2 accepts in its password file."""
    return _hash_problem(text) is None


def verify_password(password: str, encoded: str) -> bool:
    """Check a password against a ``$7$`` or ``$6$`` hash the way the broker does."""
    if _hash_problem(encoded) is not None:
        return False
    if match := _PBKDF2_HASH.fullmatch(encoded):
        iterations, salt, expected = int(match[1]), _unb64(match[2]), _unb64(match[3])
        digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    else:
        match = _SHA512_HASH.fullmatch(encoded)
        assert match is not None
        salt, expected = _unb64(match[1]), _unb64(match[2])
        digest = hashlib.sha512(password.encode("utf-8") + salt).digest()
    return hmac.compare_digest(digest, expected)


def _hash_problem(text: str) -> str | None:
    if match := _PBKDF2_HASH.fullmatch(text):
        salt, digest = _unb64(match[2]), _unb64(match[3])
    elif match := _SHA512_HASH.fullmatch(text):
        salt, digest = _unb64(match[1]), _unb64(match[2])
    else:
        return "expected $7$<iterations>$<base64 salt>$<base64 hash> (or $6$<salt>$<hash>)"
    if len(salt) != SALT_BYTES:
        return f"salt is {len(salt)} bytes, Mosquitto needs {SALT_BYTES}"
    if len(digest) != HASH_BYTES:
        return f"hash is {len(digest)} bytes, SHA-512 gives {HASH_BYTES}"
    return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return b""


# --- machines.csv -------------------------------------------------------------------------


@dataclass(frozen=True)
class MachineAccount:
    """One machine's broker identity. ``password_hash`` None: certificate only."""

    machine_id: str
    password_hash: str | None
    cert_cn: str | None = None
    line: int = 0  # where it came from, for messages

    @property
    def usernames(self) -> tuple[str, ...]:
        """Every name the broker may know this machine by (password login, TLS CN)."""
        if self.cert_cn is None or self.cert_cn == self.machine_id:
            return (self.machine_id,)
        return (self.machine_id, self.cert_cn)


def read_machines_csv(
    text: str,
    *,
    source: str = "machines.csv",
    hasher: Callable[[str], str] = hash_password,
) -> list[MachineAccount]:
    """Parse and check machines.csv; raises BrokerConfigError listing every bad line."""
    reader = csv.DictReader(io.StringIO(text, newline=""), skipinitialspace=False)
    problems: list[str] = []
    header = [name.strip() for name in (reader.fieldnames or [])]
    if not header:
        raise BrokerConfigError([f"{source}: empty file, expected a header {','.join(COLUMNS)}"])
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    unknown = [name for name in header if name not in COLUMNS]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if missing or unknown or duplicated:
        where = f"{source} line 1 (header)"
        problems += [f"{where}: missing column {name!r}" for name in missing]
        problems += [
            f"{where}: unknown column {name!r} (columns: {', '.join(COLUMNS)})" for name in unknown
        ]
        problems += [f"{where}: column {name!r} appears twice" for name in duplicated]
        raise BrokerConfigError(problems)
    reader.fieldnames = header

    accounts: list[MachineAccount] = []
    first_line: dict[str, int] = {}  # machine id or CN -> line that claimed it
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:  # an oversized field, and the like
            problems.append(f"{source} after line {reader.line_num}: not readable as CSV: {exc}")
            break
        line = reader.line_num
        where = f"{source} line {line}"
        if None in row:
            problems.append(f"{where}: more fields than the header has columns")
            continue
        values = {k: (v or "") for k, v in row.items()}
        if not any(value.strip() for value in values.values()):
            continue  # a blank line
        account, problem = _account(values, line, hasher)
        if problem is not None:
            problems.append(f"{where}: {problem}")
            continue
        assert account is not None
        clash = _claim(first_line, account)
        if clash is not None:
            problems.append(f"{where}: {clash}")
            continue
        accounts.append(account)
    if problems:
        raise BrokerConfigError(problems)
    if not accounts:
        raise BrokerConfigError([f"{source}: no machines listed"])
    return accounts


def _account(
    values: dict[str, str], line: int, hasher: Callable[[str], str]
) -> tuple[MachineAccount | None, str | None]:
    machine_id = values["machine_id"].strip()
    password = values["password"]
    cert_cn = values.get("cert_cn", "").strip() or None
    if not machine_id:
        return None, "machine_id is empty"
    if not is_machine_id(machine_id):
        return None, (
            f"invalid machine_id {machine_id!r}: expected {MACHINE_ID_PATTERN} "
            "(letters, digits, '_', '.', '-'; no '/', '+', '#', ':' or spaces)"
        )
    if cert_cn is not None and not _CN.fullmatch(cert_cn):
        return None, f"invalid cert_cn {cert_cn!r}: expected {CN_PATTERN}"
    if not password:
        if cert_cn is None:
            return None, f"machine {machine_id!r} has neither a password nor a cert_cn"
        return MachineAccount(machine_id, None, cert_cn, line), None
    if password.startswith(("$6$", "$7$")):
        problem = _hash_problem(password)
        if problem is not None:
            return None, f"password of {machine_id!r} looks like a hash but is not one: {problem}"
        return MachineAccount(machine_id, password, cert_cn, line), None
    if "\n" in password or "\r" in password:
        return None, f"password of {machine_id!r} contains a line break"
    if "\x00" in password:
        return None, f"password of {machine_id!r} contains a NUL character"
    return MachineAccount(machine_id, hasher(password), cert_cn, line), None


def _claim(first_line: dict[str, int], account: MachineAccount) -> str | None:
    for name in account.usernames:
        if name in first_line:
            what = "machine_id" if name == account.machine_id else "cert_cn"
            return (
                f"duplicate {what} {name!r}: line {first_line[name]} already uses it as a "
                "machine id or certificate CN"
            )
    for name in account.usernames:
        first_line[name] = account.line
    return None


# --- rendering --------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """Paths as the broker will see them (PEM files)."""

    ca: str
    cert: str
    key: str


@dataclass(frozen=True)
class BrokerOptions:
    fleet_user: str = "fleet"
    # Where the files will live on the broker host; mosquitto.conf names them there.
    config_dir: str = "/etc/mosquitto/vendfleet"
    data_dir: str = "/var/lib/mosquitto/"
    port: int = 1883
    bind: str | None = None  # None: every interface
    tls: TlsFiles | None = None
    tls_port: int = 8883
    # The fleet's persistent session must survive an outage of the fleet service; the
    # broker's default (1000 per client) would drop messages from a busy fleet.
    max_queued_messages: int = 100_000
    max_packet_bytes: int = MAX_PACKET_BYTES
    log_file: str | None = None  # None: Mosquitto's default (stderr / the service journal)
    fleet_publishes_telemetry: bool = False


@dataclass(frozen=True)
class BrokerFiles:
    """File name -> text, ready to write into one folder."""

    files: dict[str, str]
    generated_fleet_password: str | None = None


def render(
    accounts: Sequence[MachineAccount],
    options: BrokerOptions,
    *,
    fleet_password: str | None = None,
    hasher: Callable[[str], str] = hash_password,
) -> BrokerFiles:
    """The broker's files. Without ``fleet_password`` one is generated and returned
    (it is also written to ``fleet.password``)."""
    _check_options(accounts, options)
    generated = None
    if fleet_password is None:
        generated = fleet_password = secrets.token_urlsafe(24)
    if not fleet_password or "\n" in fleet_password:
        raise BrokerConfigError(["the fleet password must be one non-empty line"])
    files = {
        CONF_FILE: render_conf(options),
        PASSWD_FILE: render_passwd(accounts, options.fleet_user, hasher(fleet_password)),
        ACL_FILE: render_acl(accounts, options),
    }
    if generated is not None:
        files[FLEET_PASSWORD_FILE] = generated + "\n"
    return BrokerFiles(files, generated)


def _check_options(accounts: Sequence[MachineAccount], options: BrokerOptions) -> None:
    problems = []
    if not _CN.fullmatch(options.fleet_user):
        problems.append(f"invalid fleet user {options.fleet_user!r}: expected {CN_PATTERN}")
    problems += [
        f"line {account.line}: {options.fleet_user!r} is the fleet user; a machine may not "
        "use that name"
        for account in accounts
        if options.fleet_user in account.usernames
    ]
    ports = [options.port] + ([options.tls_port] if options.tls is not None else [])
    problems += [f"port {port} is outside 1..65535" for port in ports if not 0 < port < 65536]
    if len(set(ports)) != len(ports):
        problems.append(f"the plain and TLS listeners both use port {options.port}")
    for text in (options.config_dir, options.data_dir, options.bind or "", options.log_file or ""):
        if "\n" in text or "\r" in text:
            problems.append(f"line break in a configured path or address: {text!r}")
    if options.tls is not None:
        for name in ("ca", "cert", "key"):
            value = getattr(options.tls, name)
            if not value or "\n" in value:
                problems.append(f"TLS {name} file must be one non-empty path")
    if problems:
        raise BrokerConfigError(problems)


def render_conf(options: BrokerOptions) -> str:
    folder = PurePosixPath(options.config_dir)
    data_dir = options.data_dir if options.data_dir.endswith("/") else options.data_dir + "/"
    bind = f" {options.bind}" if options.bind else ""
    lines = [
        "# Generated by `vend fleet broker-config`; regenerate rather than edit.",
        "# One set of users and rules for every listener.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {folder / PASSWD_FILE}",
        f"acl_file {folder / ACL_FILE}",
        "",
        "persistence true",
        f"persistence_location {data_dir}",
        f"max_queued_messages {options.max_queued_messages}",
        f"max_packet_size {options.max_packet_bytes}",
    ]
    if options.log_file is not None:
        lines.append(f"log_dest file {options.log_file}")
    lines += ["", "# Passwords (machines and the fleet service).", f"listener {options.port}{bind}"]
    if options.tls is not None:
        lines += [
            "",
            "# Per-machine client certificates: the certificate's CN is the username.",
            f"listener {options.tls_port}{bind}",
            f"cafile {options.tls.ca}",
            f"certfile {options.tls.cert}",
            f"keyfile {options.tls.key}",
            "require_certificate true",
            "use_identity_as_username true",
        ]
    return "\n".join(lines) + "\n"


def render_passwd(accounts: Iterable[MachineAccount], fleet_user: str, fleet_hash: str) -> str:
    lines = [f"{fleet_user}:{fleet_hash}"]
    lines += [f"{a.machine_id}:{a.password_hash}" for a in accounts if a.password_hash is not None]
    return "\n".join(lines) + "\n"


def machine_rules(machine_id: str) -> list[str]:
    """ACL lines that pin one machine to its own topics."""
    base = f"{ROOT}/{VERSION}/{machine_id}"
    rules = [f"topic write {base}/{kind.value}" for kind in Kind]
    rules.append(f"topic read {base}/{COMMAND_LEVEL}/+")
    return rules


def fleet_rules(publishes_telemetry: bool = False) -> list[str]:
    tree = f"{ROOT}/{VERSION}"
    rules = [
        f"topic read {tree}/#",
        # Mosquitto 2.0 checks reads at delivery; brokers that check a shared
        # subscription's full filter at SUBSCRIBE need this form too.
        f"topic read $share/+/{tree}/#",
        f"topic write {tree}/+/{COMMAND_LEVEL}/+",
    ]
    if publishes_telemetry:
        rules += [f"topic write {tree}/+/{kind.value}" for kind in Kind]
    return rules


def render_acl(accounts: Sequence[MachineAccount], options: BrokerOptions) -> str:
    lines = [
        "# Generated by `vend fleet broker-config`; regenerate rather than edit.",
        "# A user with no block below may do nothing.",
        "",
        f"user {options.fleet_user}",
        *fleet_rules(options.fleet_publishes_telemetry),
    ]
    for account in sorted(accounts, key=lambda a: a.machine_id):
        for username in account.usernames:
            lines += ["", f"user {username}", *machine_rules(account.machine_id)]
    return "\n".join(lines) + "\n"


# --- writing ------------------------------------------------------------------------------


def write_files(folder: Path, files: BrokerFiles) -> list[Path]:
    """Write every file atomically (temporary file, then rename), secrets as 0600."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.files.items():
        path = folder / name
        mode = _SECRET_MODE if name in SECRET_FILES else _PUBLIC_MODE
        fd, temp = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
                out.write(text)
            os.replace(temp, path)
        except BaseException:
            if os.path.exists(temp):
                os.unlink(temp)
            raise
        written.append(path)
    return written
