"""Throwaway real servers for tests: Mosquitto and PostgreSQL on random loopback ports.

Each server lives in a temporary folder and is stopped by process id, so tests never
touch the machine's own services. The Debian packages come from `scripts/system-deps`
(`make test` and `.ci/run` install them).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class ServerUnavailableError(RuntimeError):
    """The server binary is not installed here."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 10.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _chown_to(path: Path, user: str) -> None:
    if os.geteuid() != 0:
        return
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)
    os.chown(path, pw.pw_uid, pw.pw_gid)


# --- Mosquitto ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    users: dict[str, str]
    folder: Path

    def url(self, user: str | None = None) -> str:
        if user is None:
            return f"mqtt://{self.host}:{self.port}"
        return f"mqtt://{user}:{self.users[user]}@{self.host}:{self.port}"


MOSQUITTO_ACL = """\
user fleet
topic readwrite vend/#
topic readwrite $share/#
pattern write vend/v1/%u/#
pattern read vend/v1/%u/cmd/#
"""


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.path.exists(candidate):
            return candidate
    raise ServerUnavailableError("mosquitto is not installed (make test installs it)")


@contextlib.contextmanager
def run_mosquitto(folder: Path, users: dict[str, str], port: int | None = None) -> Iterator[Broker]:
    """``port``: listen there (to restart a broker where its clients expect it)."""
    binary = mosquitto_binary()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    passwd = folder / "passwd"
    passwd.write_text("")
    for user, password in users.items():
        subprocess.run(
            ["mosquitto_passwd", "-b", str(passwd), user, password], check=True, capture_output=True
        )
    (folder / "acl").write_text(MOSQUITTO_ACL)
    port = port or free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        f"per_listener_settings false\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {passwd}\nacl_file {folder / 'acl'}\npersistence true\n"
        f"persistence_location {folder / 'data'}/\nmax_queued_messages 100000\n"
        f"log_dest file {folder / 'mosquitto.log'}\n"
    )
    _chown_to(folder, "mosquitto")
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for_port(port, proc=proc)
        yield Broker("127.0.0.1", port, users, folder)
    finally:
        _stop(proc)


# --- PostgreSQL ---------------------------------------------------------------------------


def postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise ServerUnavailableError(
            "PostgreSQL server binaries are not installed (make test installs them)"
        )
    return found[-1]


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@dataclass(frozen=True)
class Postgres:
    port: int
    folder: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        subprocess.run(
            _as_postgres(
                [
                    postgres_bin("createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    name,
                ]
            ),
            check=True,
            capture_output=True,
        )
        return self.url(name)


@contextlib.contextmanager
def run_postgres(folder: Path) -> Iterator[Postgres]:
    initdb, postgres = postgres_bin("initdb"), postgres_bin("postgres")
    folder.mkdir(parents=True, exist_ok=True)
    _chown_to(folder, "postgres")
    data = folder / "data"
    subprocess.run(
        _as_postgres(
            [initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        _as_postgres([postgres, "-D", str(data), "-p", str(port), "-k", str(folder),
                      "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                      "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=30, proc=proc)
        yield Postgres(port, folder)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()
