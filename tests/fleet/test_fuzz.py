"""A thousand malformed payloads, interleaved with valid traffic, through a running
FleetService on a real Mosquitto, on SQLite and on PostgreSQL.

Afterwards: every malformed payload sits in quarantine with a reason (replays are
deduplicated instead; payloads the broker's ACL refuses never arrive), the service never
dropped its connection or died, and every valid message was stored exactly once, with the
body it was first sent with. A seeded generator makes the same thousand every run.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import Engine, func, select

from fleet.mqtt import BrokerAddress
from fleet.service import FleetService
from fleet.store.models import events, quarantine, sales
from protocols.telemetry import Kind, encode, make_envelope, topic_for
from protocols.telemetry.codec import MAX_PAYLOAD_BYTES
from tests.fleet.conftest import body
from tests.fleet.test_service import DEADLINE, options, serving
from tests.support.servers import Broker

pytestmark = pytest.mark.broker

SEED = 20260301
MACHINES = ("vm-0008", "vm-0009", "vm-0010")  # not used by the other fleet tests
VALID_PER_MACHINE = 150
MALFORMED = 1000
T0 = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
VALID_KINDS = (Kind.SALE, Kind.SALE, Kind.CASH, Kind.STOCK, Kind.ALARM)
HUGE_CATEGORIES = frozenset({"over_size_limit", "huge_invalid"})


@dataclass(frozen=True)
class Sent:
    topic: str
    payload: bytes
    category: str
    reason: str | None = None  # a word the quarantine reason must contain


@dataclass
class Plan:
    streams: dict[str, list[Sent]] = field(default_factory=dict)  # per publishing machine
    valid: dict[tuple[str, int], Kind] = field(default_factory=dict)  # (machine, seq) -> kind
    malformed: list[Sent] = field(default_factory=list)  # must land in quarantine
    replays: int = 0
    refused: list[Sent] = field(default_factory=list)  # the broker's ACL drops these


def valid_document(
    machine: str, seq: int, kind: Kind, *, ts: datetime | None = None
) -> dict[str, Any]:
    base = body(kind.value)
    if kind is Kind.SALE:
        base = base.model_copy(update={"vend_id": seq})
    env = make_envelope(
        base, machine_id=machine, boot_id=1, seq=seq, ts=ts or T0 + timedelta(seconds=seq)
    )
    document: dict[str, Any] = json.loads(encode(env))
    return document


def dumps(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


# --- the malformed kinds ---------------------------------------------------------------------
# Each takes the generator, the machine and a valid document to spoil; returns the payload
# and the word its quarantine reason must contain (None: any reason).

Spoiler = Callable[[random.Random, str, dict[str, Any]], tuple[bytes, str | None]]


def truncated_json(rng: random.Random, _m: str, doc: dict[str, Any]) -> tuple[bytes, str | None]:
    raw = dumps(doc)
    return raw[: rng.randrange(1, len(raw) - 1)], None


def random_bytes(rng: random.Random, _m: str, _doc: dict[str, Any]) -> tuple[bytes, str | None]:
    return rng.randbytes(rng.randrange(1, 300)), None


def not_utf8(rng: random.Random, _m: str, doc: dict[str, Any]) -> tuple[bytes, str | None]:
    raw = dumps(doc)
    at = raw.index(b'"ts"') + 1
    return raw[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]) + raw[at:], "UTF-8"


def not_an_object(rng: random.Random, _m: str, doc: dict[str, Any]) -> tuple[bytes, str | None]:
    choices: list[Any] = [[doc], 42, "sale", None, True, [], 1.5]
    return dumps(rng.choice(choices)), "JSON object"


def deep_nesting(rng: random.Random, _m: str, _doc: dict[str, Any]) -> tuple[bytes, str | None]:
    depth = rng.randrange(5_000, 60_000)
    return b'{"a":' * depth + b"1" + b"}" * depth, None


WRONG_TYPES: list[tuple[str, Any]] = [
    ("seq", "7"), ("seq", 7.0), ("seq", True), ("seq", 0), ("seq", -3), ("boot_id", -1),
    ("boot_id", "1"), ("ts", "yesterday"), ("ts", "2026-03-01T08:00:00"), ("ts", "2026-03-01"),
    ("machine_id", 42), ("body", "sale"), ("body", []), ("v", "1"), ("v", 1.0),
    ("msg_id", 17), ("schema", ["vend.sale"]),
]  # fmt: skip
WRONG_BODY_TYPES: list[tuple[str, Any]] = [
    ("price", 12000.5), ("price", 12000.0), ("price", "12000"), ("price", -1),
    ("currency", 704), ("vend_id", "1"), ("method", "barter"), ("cash", "lots"),
]  # fmt: skip


def wrong_type(rng: random.Random, _m: str, doc: dict[str, Any]) -> tuple[bytes, str | None]:
    if doc["schema"] == "vend.sale" and rng.random() < 0.5:
        name, value = rng.choice(WRONG_BODY_TYPES)
        return dumps({**doc, "body": {**doc["body"], name: value}}), None
    name, value = rng.choice(WRONG_TYPES)
    return dumps({**doc, name: value}), None


def missing_field(rng: random.Random, _m: str, doc: dict[str, Any]) -> tuple[bytes, str | None]:
    if doc["schema"] == "vend.sale" and rng.random() < 0.4:
        name = rng.choice(["vend_id", "selection", "product", "price", "currency", "method"])
        return dumps({**doc, "body": {k: v for k, v in doc["body"].items() if k != name}}), None
    name = rng.choice(["schema", "v", "machine_id", "boot_id", "seq", "msg_id", "ts", "body"])
    return dumps({k: v for k, v in doc.items() if k != name}), None


def other_machine(
    rng: random.Random, machine: str, doc: dict[str, Any]
) -> tuple[bytes, str | None]:
    other = rng.choice([m for m in (*MACHINES, "vm-0001", "vm-9999") if m != machine])
    forged = {**doc, "machine_id": other, "msg_id": f"{other}:{doc['seq']}"}
    return dumps(forged), "does not match topic machine"


def unknown_schema(rng: random.Random, _m: str, doc: dict[str, Any]) -> tuple[bytes, str | None]:
    schema = rng.choice(["vend.bogus", "vend.sale2", "", "VEND.SALE", "vend.cmd"])
    return dumps({**doc, "schema": schema}), "unknown schema"


def schema_of_other_kind(
    rng: random.Random, _m: str, doc: dict[str, Any]
) -> tuple[bytes, str | None]:
    schema = rng.choice([k.schema for k in Kind if k.schema != doc["schema"]])
    return dumps({**doc, "schema": schema}), "does not belong on topic kind"


def future_major(rng: random.Random, _m: str, doc: dict[str, Any]) -> tuple[bytes, str | None]:
    return dumps({**doc, "v": rng.choice([2, 3, 99]), "new_in_v2": {"x": 1}}), "major version"


def wrong_msg_id(rng: random.Random, machine: str, doc: dict[str, Any]) -> tuple[bytes, str | None]:
    msg_id = rng.choice([f"{machine}:{doc['seq'] + 1}", "", f"{machine}-{doc['seq']}"])
    return dumps({**doc, "msg_id": msg_id}), "msg_id"


def beyond_64_bits(
    rng: random.Random, machine: str, doc: dict[str, Any]
) -> tuple[bytes, str | None]:
    # Valid for the contract, too big for any database column: the database refuses it.
    seq = rng.choice([2**63, 2**64 + 5, 10**30])
    return dumps({**doc, "seq": seq, "msg_id": f"{machine}:{seq}"}), "database rejected"


def over_size_limit(rng: random.Random, _m: str, doc: dict[str, Any]) -> tuple[bytes, str | None]:
    raw = dumps(doc)
    pad = MAX_PAYLOAD_BYTES - len(raw) + rng.randrange(1, 8_000)
    return dumps({**doc, "padding": "x" * pad}), "exceeds"


def huge_invalid(rng: random.Random, _m: str, doc: dict[str, Any]) -> tuple[bytes, str | None]:
    # Under the size limit, so it is parsed, then refused for what it lacks.
    junk = [rng.randrange(10) for _ in range(MAX_PAYLOAD_BYTES // 3 - 100)]
    return dumps({"schema": doc["schema"], "v": 1, "junk": junk}), None


def empty_payload(_rng: random.Random, _m: str, _doc: dict[str, Any]) -> tuple[bytes, str | None]:
    return b"", "not JSON"


SPOILERS: list[tuple[Spoiler, int]] = [  # (kind, weight)
    (truncated_json, 12), (random_bytes, 8), (not_utf8, 8), (not_an_object, 6),
    (deep_nesting, 2), (wrong_type, 18), (missing_field, 14), (other_machine, 10),
    (unknown_schema, 6), (schema_of_other_kind, 6), (future_major, 5), (wrong_msg_id, 5),
    (empty_payload, 2),
]  # fmt: skip
RARE: list[tuple[Spoiler, int]] = [(beyond_64_bits, 4), (over_size_limit, 3), (huge_invalid, 2)]
# An empty status is how a retained status is cleared (nothing to store), and a status
# msg_id has its own form, so these stay on event topics where their reason is certain.
EVENT_TOPICS_ONLY: frozenset[Spoiler] = frozenset({empty_payload, other_machine, beyond_64_bits})


def future_fields(rng: random.Random, doc: dict[str, Any], *, huge: bool = False) -> bytes:
    """A newer minor version: unknown fields at every level, which this build must ignore."""
    extra: dict[str, Any] = {"trace_id": f"t-{rng.randrange(10**9)}", "firmware_hint": [1, 2]}
    if huge:
        extra["blob"] = "y" * (MAX_PAYLOAD_BYTES - len(dumps(doc)) - 2_000)
    return dumps({**doc, **extra, "body": {**doc["body"], "loyalty_points": rng.randrange(50)}})


# --- the plan ---------------------------------------------------------------------------------


def build_plan(rng: random.Random) -> Plan:
    plan = Plan()
    kinds: dict[tuple[str, int], Kind] = {
        (m, seq): rng.choice(VALID_KINDS)
        for m in MACHINES
        for seq in range(1, VALID_PER_MACHINE + 1)
    }
    # Which stream (machine) carries each malformed payload, and the rare ones at fixed slots.
    spoilers: list[Spoiler] = [s for s, n in RARE for _ in range(n)]
    spoilers += rng.choices([s for s, _ in SPOILERS], [w for _, w in SPOILERS], k=MALFORMED)
    spoilers = spoilers[:MALFORMED]
    rng.shuffle(spoilers)
    slots: dict[str, list[Spoiler]] = {m: [] for m in MACHINES}
    for spoiler in spoilers:
        slots[rng.choice(MACHINES)].append(spoiler)
    huge_future = {m: rng.randrange(10, VALID_PER_MACHINE - 1) for m in MACHINES[:2]}

    for machine in MACHINES:
        stream: list[Sent] = []
        sent_valid: list[Sent] = []
        pending = slots[machine]
        per_valid = len(pending) / VALID_PER_MACHINE
        owed = 0.0
        for seq in range(1, VALID_PER_MACHINE + 1):
            kind = kinds[(machine, seq)]
            doc = valid_document(machine, seq, kind)
            topic = topic_for(machine, kind)
            if seq == huge_future.get(machine):
                payload = future_fields(rng, doc, huge=True)
            elif rng.random() < 0.1:
                payload = future_fields(rng, doc)
            else:
                payload = dumps(doc)
            good = Sent(topic, payload, "valid")
            stream.append(good)
            sent_valid.append(good)
            plan.valid[(machine, seq)] = kind
            if seq == VALID_PER_MACHINE:
                break  # the last valid message closes each stream: the drain marker
            owed += per_valid
            while owed >= 1 and pending:
                owed -= 1
                stream.append(spoil(rng, machine, pending.pop(), seq, plan))
            if rng.random() < 0.05:
                stream.append(replay(rng, machine, sent_valid, plan))
            if rng.random() < 0.02:
                stream.append(refused(rng, machine, seq, plan))
        # Whatever the rounding left goes before the closing message.
        extra = [spoil(rng, machine, s, VALID_PER_MACHINE, plan) for s in pending]
        plan.streams[machine] = [*stream[:-1], *extra, stream[-1]]
    return plan


def spoil(rng: random.Random, machine: str, spoiler: Spoiler, seq: int, plan: Plan) -> Sent:
    kinds = [*VALID_KINDS, Kind.REFUND]
    if spoiler not in EVENT_TOPICS_ONLY:
        kinds.append(Kind.STATUS)
    kind = rng.choice(kinds)
    doc = valid_document(machine, rng.randrange(1, seq + 1), kind)
    payload, reason = spoiler(rng, machine, doc)
    sent = Sent(topic_for(machine, kind), payload, spoiler.__name__, reason)
    plan.malformed.append(sent)
    return sent


def replay(rng: random.Random, machine: str, sent_valid: list[Sent], plan: Plan) -> Sent:
    """An earlier seq again: verbatim (a QoS 1 re-send) or with another body (a conflict)."""
    plan.replays += 1
    earlier = rng.choice(sent_valid)
    if rng.random() < 0.5:
        return Sent(earlier.topic, earlier.payload, "replay")
    doc = json.loads(earlier.payload)
    doc["ts"] = (T0 + timedelta(days=1)).isoformat()
    if doc["schema"] == "vend.sale":
        doc["body"]["vend_id"] = 10**6 + doc["seq"]
    return Sent(earlier.topic, dumps(doc), "replay_conflict")


def refused(rng: random.Random, machine: str, seq: int, plan: Plan) -> Sent:
    other = rng.choice([m for m in MACHINES if m != machine])
    topic = rng.choice(
        [f"vend/v1/{machine}/bogus", f"vend/v1/{machine}/sale/extra",
         f"vend/v1/{machine}/cmd/reboot", topic_for(other, Kind.SALE), f"vend/v2/{machine}/sale"]
    )  # fmt: skip
    sent = Sent(topic, dumps(valid_document(machine, seq, Kind.SALE)), "refused_by_acl")
    plan.refused.append(sent)
    return sent


# --- the run --------------------------------------------------------------------------------


async def publish_stream(broker: Broker, machine: str, stream: list[Sent]) -> None:
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        username=machine,
        password=broker.users[machine],
        protocol=aiomqtt.ProtocolVersion.V5,
        max_inflight_messages=50,
    ) as client:
        for item in stream:
            await client.publish(item.topic, item.payload, qos=1)


def count(engine: Engine, stmt: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def drained(engine: Engine) -> bool:
    """Each stream ends with its last valid seq; a single writer commits in arrival order."""
    last = select(func.count()).where(
        events.c.machine_id.in_(MACHINES), events.c.seq == VALID_PER_MACHINE
    )
    return count(engine, last) == len(MACHINES)


async def test_malformed_payloads_are_quarantined_and_valid_ones_stored_once(
    engine: Engine, mosquitto: Broker
) -> None:
    plan = build_plan(random.Random(SEED))
    assert len(plan.malformed) == MALFORMED
    service = FleetService(
        engine, BrokerAddress.from_url(mosquitto.url("fleet")), options(batch_size=100)
    )
    async with serving(service):
        await asyncio.gather(*(publish_stream(mosquitto, m, plan.streams[m]) for m in MACHINES))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        while not await asyncio.to_thread(drained, engine):
            assert service.connected.is_set(), "the service lost its broker connection"
            if loop.time() > deadline:
                raise AssertionError("gave up waiting for every stream's closing message")
            await asyncio.sleep(0.05)
        assert service.connected.is_set()
        assert service.stats.connects == 1  # never crashed, never reconnected

    ours = quarantine.c.topic.in_([topic_for(m, k) for m in MACHINES for k in Kind])
    with engine.connect() as conn:
        held = conn.execute(
            select(quarantine.c.topic, quarantine.c.payload, quarantine.c.reason).where(ours)
        ).all()
        stored = conn.execute(
            select(events.c.machine_id, events.c.seq, events.c.schema, events.c.body).where(
                events.c.machine_id.in_(MACHINES)
            )
        ).all()
        sales_rows = conn.execute(
            select(func.count()).select_from(sales).where(sales.c.machine_id.in_(MACHINES))
        ).scalar_one()

    # Every malformed payload is held, once, and the reason says what was wrong.
    assert Counter((t, bytes(p)) for t, p, _ in held) == Counter(
        (s.topic, s.payload) for s in plan.malformed
    )
    reasons: dict[tuple[str, bytes], list[str]] = {}
    for topic, payload, reason in held:
        reasons.setdefault((topic, bytes(payload)), []).append(reason)
    for sent in plan.malformed:
        for reason in reasons[(sent.topic, sent.payload)]:
            assert reason.strip(), f"{sent.category}: empty reason"
            if sent.reason is not None:
                assert sent.reason in reason, f"{sent.category}: {reason!r}"

    # Every valid message stored exactly once, with the body it was first sent with.
    assert Counter((m, s) for m, s, _, _ in stored) == Counter(list(plan.valid))
    for machine, seq, schema, stored_body in stored:
        assert schema == plan.valid[(machine, seq)].schema
        if schema == "vend.sale":
            assert json.loads(stored_body)["vend_id"] == seq
    assert sales_rows == sum(1 for kind in plan.valid.values() if kind is Kind.SALE)
    assert service.stats.report.duplicates >= plan.replays

    # What the broker's ACL refused never reached the fleet in any form.
    refused_payloads = {s.payload for s in plan.refused}
    assert not refused_payloads & {bytes(p) for _, p, _ in held}


def test_the_plan_is_deterministic_and_covers_every_kind() -> None:
    first, second = build_plan(random.Random(SEED)), build_plan(random.Random(SEED))
    assert first.streams == second.streams
    categories = Counter(s.category for s in first.malformed)
    assert set(categories) == {s.__name__ for s, _ in [*SPOILERS, *RARE]}
    assert first.replays > 0
    assert first.refused
    assert sum(1 for s in first.streams.values() for x in s if len(x.payload) > 900_000) >= 5
