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
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from fleet.broker_config import (
    CONF_FILE,
    BrokerOptions,
    MachineAccount,
    TlsFiles,
    hash_password,
    render,
    write_files,
)


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
    tls_port: int | None = None  # the certificate listener, when started with ``tls``

    def url(self, user: str | None = None) -> str:
        if user is None:
            return f"mqtt://{self.host}:{self.port}"
        return f"mqtt://{user}:{self.users[user]}@{self.host}:{self.port}"


FLEET_USER = "fleet"


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.path.exists(candidate):
            return candidate
    raise ServerUnavailableError("mosquitto is not installed (make test installs it)")


@contextlib.contextmanager
def run_mosquitto(
    folder: Path,
    users: dict[str, str],
    port: int | None = None,
    *,
    accounts: Sequence[MachineAccount] = (),
    tls: TlsFiles | None = None,
    fleet_publishes_telemetry: bool = True,
) -> Iterator[Broker]:
    """A broker configured by :mod:`fleet.broker_config`, as operators deploy it.

    ``users``: ``fleet`` is the fleet user, every other name a machine with that password.
    ``accounts``: more machines (e.g. certificate-only ones, for ``tls``). ``port``: listen
    there (to restart a broker where its clients expect it). The fleet user may publish
    telemetry by default because benchmarks and some tests feed the fleet through it;
    pass ``fleet_publishes_telemetry=False`` for the operators' default.
    """
    mosquitto_binary()  # fail early and clearly when it is not installed
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    machines = [
        MachineAccount(user, hash_password(password), line=n)
        for n, (user, password) in enumerate(users.items(), start=1)
        if user != FLEET_USER
    ]
    port = port or free_port()
    tls_port = free_port() if tls is not None else None
    options = BrokerOptions(
        fleet_user=FLEET_USER,
        config_dir=str(folder),
        data_dir=str(folder / "data"),
        port=port,
        bind="127.0.0.1",
        tls=tls,
        tls_port=tls_port or 8883,
        log_file=str(folder / "mosquitto.log"),
        fleet_publishes_telemetry=fleet_publishes_telemetry,
    )
    write_files(
        folder, render([*machines, *accounts], options, fleet_password=users.get(FLEET_USER))
    )
    ports = [port] if tls_port is None else [port, tls_port]
    with mosquitto_process(folder, folder / CONF_FILE, ports):
        yield Broker("127.0.0.1", port, users, folder, tls_port)


@contextlib.contextmanager
def mosquitto_process(
    folder: Path, conf: Path, ports: Sequence[int]
) -> Iterator[subprocess.Popen[bytes]]:
    """Mosquitto on ``conf`` (its files in ``folder``, handed to the broker's user) until
    the block ends; ready once every port listens."""
    _chown_to(folder, "mosquitto")
    proc = subprocess.Popen(
        [mosquitto_binary(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        for listening in ports:
            wait_for_port(listening, proc=proc)
        yield proc
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


@contextlib.contextmanager
def server_folder(name: str) -> Iterator[Path]:
    """A temporary folder a server's own user can reach (pytest's tmp_path is root's)."""
    folder = Path(tempfile.mkdtemp(prefix=f"vendfleet-{name}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
