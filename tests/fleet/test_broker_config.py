"""A real Mosquitto on the files `fleet.broker_config` writes enforces what operators need:
machines pinned to their own topics, the fleet reading everything and commanding, wrong
passwords and strangers refused, certificate CNs treated as their machines.

A dropped publish is proven absent by order: one client publishes the forbidden message
and then a permitted one; the broker handles one client's packets in order and delivers to
each subscriber in order, so once the permitted one arrives the other would have too.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import shutil
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.broker_config import (
    BrokerConfigError,
    MachineAccount,
    TlsFiles,
    is_password_hash,
    read_machines_csv,
    verify_password,
)
from protocols.telemetry.fields import is_machine_id
from tests.support.servers import Broker, run_mosquitto, server_folder

pytestmark = pytest.mark.broker
DEADLINE = 20.0  # seconds before a wait gives up (a failure, not a timing assert)
CERT_CN = "vm-c.machines.test"
USERS = {"fleet": "fleet-pw", "vm-a": "pw-a", "vm-b": "pw-b"}
HASHED_MACHINE, HASHED_PASSWORD = "vm-h", "pw-h: with spaces, ünïcode and $ signs"


@dataclass(frozen=True)
class BrokerSetup:
    broker: Broker
    tls: TlsFiles | None
    client_cert: tuple[str, str] | None  # (cert, key) of CERT_CN
    users: dict[str, str] = field(default_factory=dict)


def _openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)


def make_certificates(folder: Path) -> tuple[TlsFiles, tuple[str, str]]:
    """A CA, a broker certificate for 127.0.0.1 and a machine certificate with CERT_CN."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(folder, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=vendfleet test CA")  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, cn, ext in (("server", "127.0.0.1", True), ("machine", CERT_CN, False)):
        _openssl(folder, "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={cn}")  # fmt: skip
        _openssl(folder, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt",
                 "-CAkey", "ca.key", "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                 *(["-extfile", "san.ext"] if ext else []))  # fmt: skip
    tls = TlsFiles(str(folder / "ca.crt"), str(folder / "server.crt"), str(folder / "server.key"))
    return tls, (str(folder / "machine.crt"), str(folder / "machine.key"))


def mosquitto_passwd_hash(folder: Path, user: str, password: str) -> str:
    """A hash made by Mosquitto's own tool, to feed machines.csv its pre-hashed form."""
    passwd = folder / "external.passwd"
    passwd.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    line = passwd.read_text().strip()
    passwd.unlink()
    return line.split(":", 1)[1]


@pytest.fixture(scope="module")
def setup() -> Iterator[BrokerSetup]:
    with server_folder("broker-config") as folder:
        hashed = mosquitto_passwd_hash(folder, HASHED_MACHINE, HASHED_PASSWORD)
        csv_text = f'machine_id,password,cert_cn\n{HASHED_MACHINE},"{hashed}",\nvm-c,,{CERT_CN}\n'
        extra: list[MachineAccount] = read_machines_csv(csv_text)
        tls, client = None, None
        if shutil.which("openssl"):
            tls, client = make_certificates(folder)
        with run_mosquitto(
            folder, USERS, accounts=extra, tls=tls, fleet_publishes_telemetry=False
        ) as broker:
            users = {**USERS, HASHED_MACHINE: HASHED_PASSWORD}
            yield BrokerSetup(broker, tls, client, users)


@contextlib.asynccontextmanager
async def client(
    setup: BrokerSetup, user: str | None, password: str | None = None
) -> AsyncIterator[aiomqtt.Client]:
    b = setup.broker
    secret = password if password is not None else (setup.users[user] if user else None)
    async with aiomqtt.Client(
        b.host,
        b.port,
        username=user,
        password=secret,
        identifier=f"t-{uuid.uuid4().hex[:8]}",
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as c:
        yield c


@contextlib.asynccontextmanager
async def cert_client(
    setup: BrokerSetup, *, with_cert: bool = True
) -> AsyncIterator[aiomqtt.Client]:
    assert setup.tls is not None
    assert setup.client_cert is not None
    assert setup.broker.tls_port is not None
    context = ssl.create_default_context(cafile=setup.tls.ca)
    if with_cert:
        context.load_cert_chain(*setup.client_cert)
    async with aiomqtt.Client(
        setup.broker.host,
        setup.broker.tls_port,
        tls_context=context,
        identifier=f"t-{uuid.uuid4().hex[:8]}",
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as c:
        yield c


@contextlib.asynccontextmanager
async def inbox(c: aiomqtt.Client, *filters: str) -> AsyncIterator[list[tuple[str, bytes]]]:
    """What ``c`` receives on ``filters`` (subscribed, SUBACK seen, before this yields)."""
    got: list[tuple[str, bytes]] = []
    for topic_filter in filters:
        await c.subscribe(topic_filter, qos=1)

    async def collect() -> None:
        async for message in c.messages:
            assert isinstance(message.payload, bytes)
            got.append((message.topic.value, message.payload))

    task = asyncio.create_task(collect())
    try:
        yield got
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await task


async def arrives(got: list[tuple[str, bytes]], item: tuple[str, bytes]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while item not in got:
        if loop.time() > deadline:
            raise AssertionError(f"{item} never arrived; got {got}")
        await asyncio.sleep(0.02)


def mark(text: str) -> bytes:
    return f"{text}-{uuid.uuid4().hex[:8]}".encode()


async def test_a_machine_cannot_publish_as_another_machine(setup: BrokerSetup) -> None:
    forged, legit = mark("forged"), mark("legit")
    async with client(setup, "fleet") as fleet, inbox(fleet, "vend/v1/#") as seen:
        async with client(setup, "vm-a") as vm:
            await vm.publish("vend/v1/vm-b/sale", forged, qos=1)
            await vm.publish("vend/v1/vm-b/status", forged, qos=1, retain=True)
            await vm.publish("vend/v1/vm-a/sale", legit, qos=1)
        await arrives(seen, ("vend/v1/vm-a/sale", legit))
    assert [payload for _, payload in seen] == [legit]


async def test_a_machine_cannot_send_commands_even_to_itself(setup: BrokerSetup) -> None:
    forged, legit = mark("forged"), mark("legit")
    async with (
        client(setup, "vm-b") as vm_b,
        inbox(vm_b, "vend/v1/vm-b/cmd/+") as b_got,
        client(setup, "fleet") as fleet,
    ):
        async with client(setup, "vm-a") as vm_a:
            await vm_a.publish("vend/v1/vm-b/cmd/reboot", forged, qos=1)
        async with client(setup, "vm-b") as self_commander:
            await self_commander.publish("vend/v1/vm-b/cmd/reboot", forged, qos=1)
        await fleet.publish("vend/v1/vm-b/cmd/reboot", legit, qos=1)
        await arrives(b_got, ("vend/v1/vm-b/cmd/reboot", legit))
    assert b_got == [("vend/v1/vm-b/cmd/reboot", legit)]


async def test_a_machine_reads_its_own_commands_and_nothing_else(setup: BrokerSetup) -> None:
    for_b, for_a, sale_b = mark("for-b"), mark("for-a"), mark("sale-b")
    async with (
        client(setup, "vm-a") as vm_a,
        # The broker grants these subscriptions but delivers only what the ACL lets vm-a read.
        inbox(vm_a, "vend/v1/vm-b/cmd/+", "vend/v1/+/cmd/+", "vend/v1/#", "#") as a_got,
        client(setup, "fleet") as fleet,
        inbox(fleet, "vend/v1/vm-b/sale") as fleet_got,
    ):
        async with client(setup, "vm-b") as vm_b:
            await vm_b.publish("vend/v1/vm-b/sale", sale_b, qos=1)
        await arrives(fleet_got, ("vend/v1/vm-b/sale", sale_b))
        await fleet.publish("vend/v1/vm-b/cmd/price_change", for_b, qos=1)
        await fleet.publish("vend/v1/vm-a/cmd/price_change", for_a, qos=1)
        await arrives(a_got, ("vend/v1/vm-a/cmd/price_change", for_a))
    assert {payload for _, payload in a_got} == {for_a}


async def test_the_fleet_reads_every_machine_and_shared_subscriptions_work(
    setup: BrokerSetup,
) -> None:
    sent = {(f"vend/v1/{m}/{kind}", mark(m)) for m in ("vm-a", "vm-b") for kind in ("sale", "ack")}
    async with (
        client(setup, "fleet") as fleet,
        inbox(fleet, "$share/ingest/vend/v1/+/sale", "vend/v1/+/ack") as seen,
    ):
        for topic, payload in sorted(sent):
            async with client(setup, topic.split("/")[2]) as vm:
                await vm.publish(topic, payload, qos=1)
        for item in sent:
            await arrives(seen, item)


async def test_the_fleet_cannot_publish_telemetry_by_default(setup: BrokerSetup) -> None:
    forged, legit = mark("forged"), mark("legit")
    async with client(setup, "fleet") as watcher, inbox(watcher, "vend/v1/vm-a/#") as seen:
        async with client(setup, "fleet") as fleet:
            await fleet.publish("vend/v1/vm-a/sale", forged, qos=1)
            await fleet.publish("vend/v1/vm-a/cmd/reboot", legit, qos=1)
        await arrives(seen, ("vend/v1/vm-a/cmd/reboot", legit))
    assert [payload for _, payload in seen] == [legit]


@pytest.mark.parametrize(
    ("user", "password"),
    [("vm-a", "pw-b"), ("vm-a", ""), ("fleet", "pw-a"), ("vm-z", "pw-a"), (None, None),
     (HASHED_MACHINE, HASHED_PASSWORD[:-1])],
    ids=["other-machines-password", "empty", "fleet-with-machine-password", "unknown-user",
         "anonymous", "prehashed-one-char-short"],
)  # fmt: skip
async def test_wrong_credentials_are_refused(
    setup: BrokerSetup, user: str | None, password: str | None
) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with client(setup, user, password) as c:
            await c.publish("vend/v1/vm-a/sale", b"x", qos=1)


async def test_a_hash_from_mosquitto_passwd_in_the_csv_logs_in(setup: BrokerSetup) -> None:
    legit = mark("hashed")
    async with client(setup, "fleet") as fleet, inbox(fleet, "vend/v1/vm-h/sale") as seen:
        async with client(setup, HASHED_MACHINE) as vm:
            await vm.publish("vend/v1/vm-h/sale", legit, qos=1)
        await arrives(seen, ("vend/v1/vm-h/sale", legit))


# --- TLS: the certificate's CN is the username -------------------------------------------------


@pytest.fixture
def tls_setup(setup: BrokerSetup) -> BrokerSetup:
    if setup.tls is None:
        pytest.skip("openssl is not installed: no certificates for the TLS listener")
    return setup


async def test_a_certificate_machine_publishes_only_as_its_machine(tls_setup: BrokerSetup) -> None:
    forged, legit, command = mark("forged"), mark("legit"), mark("cmd")
    async with (
        client(tls_setup, "fleet") as fleet,
        inbox(fleet, "vend/v1/+/sale") as seen,
        cert_client(tls_setup) as vm,
        inbox(vm, "vend/v1/vm-c/cmd/+", "vend/v1/vm-a/cmd/+") as vm_got,
    ):
        await vm.publish("vend/v1/vm-a/sale", forged, qos=1)
        await vm.publish("vend/v1/vm-c/sale", legit, qos=1)
        await arrives(seen, ("vend/v1/vm-c/sale", legit))
        await fleet.publish("vend/v1/vm-a/cmd/reboot", forged, qos=1)
        await fleet.publish("vend/v1/vm-c/cmd/reboot", command, qos=1)
        await arrives(vm_got, ("vend/v1/vm-c/cmd/reboot", command))
    assert [payload for _, payload in seen] == [legit]
    assert [payload for _, payload in vm_got] == [command]


async def test_the_tls_listener_refuses_a_client_without_a_certificate(
    tls_setup: BrokerSetup,
) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with cert_client(tls_setup, with_cert=False) as c:
            await c.publish("vend/v1/vm-c/sale", b"x", qos=1)


# --- the pure parts: hashes and machines.csv --------------------------------------------------


def test_verify_password_agrees_with_mosquitto_passwd(tmp_path: Path) -> None:
    made_by_mosquitto = mosquitto_passwd_hash(tmp_path, "vm-x", "päss wörd")
    assert is_password_hash(made_by_mosquitto)
    assert verify_password("päss wörd", made_by_mosquitto)
    assert not verify_password("päss wörd ", made_by_mosquitto)
    assert not verify_password("pass word", made_by_mosquitto)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_machines_or_a_broker_config_error(text: str) -> None:
    problems: tuple[str, ...] = ()
    accounts: list[MachineAccount] = []
    try:
        accounts = read_machines_csv(text, hasher=lambda p: "$7$1$" + p)
    except BrokerConfigError as exc:
        problems = exc.problems
    assert bool(problems) != bool(accounts)
    assert all(problem.strip() for problem in problems)
    assert all(is_machine_id(a.machine_id) for a in accounts)


ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
passwords = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n\x00"), min_size=1
).filter(lambda p: not p.startswith(("$6$", "$7$")))


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(ids, passwords, min_size=1, max_size=5))
def test_csv_written_by_any_tool_reads_back_with_working_hashes(rows: dict[str, str]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["password", "machine_id"])  # column order is free
    writer.writerows([password, machine] for machine, password in rows.items())
    accounts = read_machines_csv(buffer.getvalue())
    assert [a.machine_id for a in accounts] == list(rows)
    for account in accounts:
        assert account.password_hash is not None
        assert verify_password(rows[account.machine_id], account.password_hash)
        assert not verify_password(rows[account.machine_id] + "x", account.password_hash)
