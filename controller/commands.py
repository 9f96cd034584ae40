"""Fleet commands: decode, verify, apply through the machine, acknowledge.

Every command that can be decoded gets exactly one ack on ``vend/v1/<id>/ack`` with its
outcome (a deferred planogram gets a second, ``applied``, when it takes effect). Acks go
through the outbox like every other message. A payload that cannot be decoded has no
trustworthy id to acknowledge: it is logged and dropped.

The replay guard is kept in the journal's meta table and written in the same transaction
as the command's effect (or its ack, for commands that change nothing), so a command
applied before a power cut is refused as ``replayed`` after it.

Effects, each journaled through :meth:`Machine.submit`:

* ``price_change`` -> ``PriceChanged``.
* ``planogram_change`` -> ``PlanogramLoaded``. ``now`` while a customer is being served
  (the session refuses planograms then) is deferred and retried once the machine is idle;
  ``next_service`` waits in the meta table until the service door next closes.
* ``selection_service`` -> ``ServiceStateChanged``.
* ``machine_service`` -> ``ServiceStateChanged`` for every selection, with the reason
  ``machine out of service: <reason>``; back in service restores only the selections
  that reason took out (a jammed spiral stays out). No machine-level flag: the session
  and the fleet already understand per-selection service state.
* ``request_dex`` -> a ``dex`` message built by :func:`controller.audit.read_dex`.
* ``resync`` -> a stock snapshot, and every kept outbox row after ``after_seq`` queued
  again (rows older than the retention period are gone and cannot be re-sent).
* ``reboot`` -> ack, wait for its PUBACK (and for a vend or payout to finish), then the
  process exits with :data:`REBOOT_EXIT_CODE` so systemd starts it again
  (``Restart=on-failure`` or ``RestartForceExitStatus=75``).

Prices and planograms changed by the fleet survive a restart: the machine remembers the
``config_version`` of machine.toml they were made against and does not reload the file's
planogram until the file itself changes version.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from controller.audit import read_dex
from controller.journal import Journal, MetaUpdate
from controller.outbox import message_for
from protocols.dex import parse_dex
from protocols.dex.summary import summarize
from protocols.money import Money
from protocols.telemetry import (
    AckOutcome,
    ChangePlanogram,
    ChangePrice,
    Command,
    CommandAckBody,
    DexReadBody,
    DexSummary,
    Effective,
    Reboot,
    ReplayGuard,
    RequestDex,
    Resync,
    SetMachineService,
    SetSelectionService,
    TelemetryError,
    decode_command,
    verify,
)
from protocols.vend import inputs as i
from protocols.vend.inputs import decode_input, encode_input
from protocols.vend.model import Selection

if TYPE_CHECKING:
    from controller.machine import Machine

log = logging.getLogger(__name__)

REBOOT_EXIT_CODE = 75  # EX_TEMPFAIL: "try again", the process wants to be restarted
GUARD_KEY = "command_replay_guard"
PENDING_PLANOGRAM_KEY = "pending_planogram"
CONFIG_VERSION_KEY = "config_version"  # the planogram version in force, if the fleet set it
FLEET_BASE_KEY = "fleet_changes_base"  # machine.toml config_version the fleet changed
MACHINE_REASON = "machine out of service"
REBOOT_ACK_TIMEOUT = 10.0
REBOOT_IDLE_TIMEOUT = 60.0
PENDING_POLL = 1.0


class CommandProcessor:
    def __init__(self, machine: Machine, key: bytes) -> None:
        self.machine = machine
        self.key = key
        self.guard = ReplayGuard()
        self.pending: dict[str, Any] | None = None

    @property
    def journal(self) -> Journal:
        return self.machine.journal

    def load(self) -> None:
        """Read the replay guard and any deferred planogram (journal open, before running)."""
        raw = self.journal.get_meta(GUARD_KEY)
        if raw:
            try:
                self.guard = ReplayGuard.from_list(json.loads(raw))
            except (ValueError, TelemetryError):
                log.exception("replay guard unreadable; commands issued before are refused")
                self.guard = ReplayGuard()
        pending = self.journal.get_meta(PENDING_PLANOGRAM_KEY)
        self.pending = json.loads(pending) if pending else None

    # --- receiving --------------------------------------------------------------------

    async def handle(self, topic: str, payload: bytes) -> None:
        try:
            cmd = decode_command(topic, payload)
        except TelemetryError as exc:
            log.warning("command on %s dropped: %s", topic, exc.reason)
            return
        verdict = verify(
            cmd,
            key=self.key,
            machine_id=self.machine.config.machine.id,
            now=self.machine.wall(),
            guard=self.guard,
        )
        if not verdict.ok:
            assert verdict.ack_outcome is not None
            log.warning("command %s %s refused: %s", cmd.name, cmd.id, verdict.reason)
            await self._ack(cmd, verdict.ack_outcome, verdict.reason)
            return
        log.info("command %s %s accepted", cmd.name, cmd.id)
        meta: MetaUpdate = {GUARD_KEY: json.dumps(self.guard.to_list())}
        try:
            await self._apply(cmd, meta)
        except Exception as exc:
            log.exception("command %s %s failed", cmd.name, cmd.id)
            await self._ack(cmd, AckOutcome.FAILED, f"{type(exc).__name__}: {exc}", meta)

    async def _ack(
        self,
        cmd: Command,
        outcome: AckOutcome,
        detail: str = "",
        meta: MetaUpdate | None = None,
    ) -> list[int]:
        return await self.machine.enqueue([_ack(cmd.id, cmd.name, outcome, detail)], meta)

    async def _apply(self, cmd: Command, meta: MetaUpdate) -> None:
        match cmd:
            case ChangePrice():
                await self._price(cmd, meta)
            case ChangePlanogram():
                await self._planogram(cmd, meta)
            case SetSelectionService():
                await self._selection_service(cmd, meta)
            case SetMachineService():
                await self._machine_service(cmd, meta)
            case RequestDex():
                await self._dex(cmd, meta)
            case Resync():
                await self._resync(cmd, meta)
            case Reboot():
                await self._reboot(cmd, meta)

    async def _submit(
        self,
        cmd: Command,
        event: i.VendInput,
        meta: MetaUpdate,
        detail: str = "",
        applied_meta: MetaUpdate | None = None,
    ) -> None:
        """Apply one input with the ack (and meta) in its transaction; refusals are acked."""
        ack = _ack(cmd.id, cmd.name, AckOutcome.APPLIED, detail)
        refused = await self.machine.submit(
            event, also=[ack], meta={**meta, **(applied_meta or {})}
        )
        if refused:
            await self._ack(cmd, AckOutcome.REJECTED, refused, meta)

    # --- the commands -----------------------------------------------------------------

    async def _price(self, cmd: ChangePrice, meta: MetaUpdate) -> None:
        a = cmd.args
        if a.currency != self.machine.session.currency:
            await self._ack(cmd, AckOutcome.REJECTED, f"machine sells in {self._currency}", meta)
            return
        price = Money(a.price, a.currency)
        base = {FLEET_BASE_KEY: self.machine.config.config_version}
        await self._submit(cmd, i.PriceChanged(code=a.selection, price=price), meta, "", base)

    @property
    def _currency(self) -> str:
        return self.machine.session.currency

    async def _selection_service(self, cmd: SetSelectionService, meta: MetaUpdate) -> None:
        a = cmd.args
        reason = a.reason or "fleet"
        event = i.ServiceStateChanged(code=a.selection, in_service=a.in_service, reason=reason)
        await self._submit(cmd, event, meta)

    async def _machine_service(self, cmd: SetMachineService, meta: MetaUpdate) -> None:
        a = cmd.args
        selections = self.machine.session.selections
        if a.in_service:
            codes = [c for c, s in selections.items() if s.reason.startswith(MACHINE_REASON)]
        else:
            codes = [c for c, s in selections.items() if s.in_service]
        reason = f"{MACHINE_REASON}: {a.reason}" if a.reason else MACHINE_REASON
        detail = f"{len(codes)} selections {'back in' if a.in_service else 'out of'} service"
        if not codes:
            await self._ack(cmd, AckOutcome.APPLIED, detail, meta)
            return
        for n, code in enumerate(codes):
            event = i.ServiceStateChanged(code=code, in_service=a.in_service, reason=reason)
            last = n == len(codes) - 1
            if last:
                await self._submit(cmd, event, meta, detail)
            else:
                await self.machine.submit(event)

    async def _planogram(self, cmd: ChangePlanogram, meta: MetaUpdate) -> None:
        a = cmd.args
        if a.currency != self.machine.config.machine.currency:
            await self._ack(cmd, AckOutcome.REJECTED, f"machine sells in {self._currency}", meta)
            return
        # The fleet's planogram does not know the units: a selection stays on the unit
        # machine.toml puts it on (new codes: the first unit).
        config = self.machine.config
        if not config.units:
            await self._ack(cmd, AckOutcome.REJECTED, "no dispensing unit: a cabinet only", meta)
            return
        first = config.units[0].name
        by_code = {e.code: config.unit_of(e) for e in config.selection}
        single = len(config.units) == 1
        try:
            selections = tuple(
                Selection(
                    code=e.code,
                    product=e.product,
                    price=Money(e.price, a.currency),
                    capacity=e.capacity,
                    par=e.par,
                    motor=e.motor,
                    item_number=e.item_number or n + 1,
                    unit="" if single else by_code.get(e.code, first),
                )
                for n, e in enumerate(a.selections)
            )
        except (ValidationError, ValueError) as exc:
            await self._ack(cmd, AckOutcome.REJECTED, f"bad planogram: {exc}", meta)
            return
        problem = _planogram_problem(selections)
        if problem:
            await self._ack(cmd, AckOutcome.REJECTED, problem, meta)
            return
        pending = {
            "command_id": cmd.id,
            "name": cmd.name,
            "effective": a.effective.value,
            "config_version": a.config_version,
            "input": encode_input(i.PlanogramLoaded(currency=a.currency, selections=selections)),
        }
        if a.effective is Effective.NEXT_SERVICE:
            self.pending = pending
            why = "applied when the service door closes"
            await self._ack(
                cmd, AckOutcome.DEFERRED, why, {**meta, PENDING_PLANOGRAM_KEY: json.dumps(pending)}
            )
            return
        await self._load_planogram(pending, meta)

    async def _load_planogram(self, pending: dict[str, Any], meta: MetaUpdate) -> None:
        m = self.machine
        version = str(pending["config_version"])
        applied = _ack(pending["command_id"], pending["name"], AckOutcome.APPLIED, version)
        refused = await m.submit(
            decode_input(pending["input"]),
            also=[applied],
            meta={
                **meta,
                PENDING_PLANOGRAM_KEY: None,
                CONFIG_VERSION_KEY: version,
                FLEET_BASE_KEY: m.config.config_version,
            },
        )
        if refused is None:
            self.pending = None
            m.config_version = version
            return
        waiting = self.pending
        if (
            waiting is not None
            and waiting["command_id"] == pending["command_id"]
            and waiting["effective"] == Effective.NOW.value
        ):
            return  # still waiting for the customer; the fleet knows
        deferred = {**pending, "effective": Effective.NOW.value}
        self.pending = deferred
        ack = _ack(pending["command_id"], pending["name"], AckOutcome.DEFERRED, refused)
        await m.enqueue([ack], {**meta, PENDING_PLANOGRAM_KEY: json.dumps(deferred)})

    async def run_pending(self) -> None:
        """Apply a planogram deferred for a customer as soon as nobody is being served."""
        while True:
            await asyncio.sleep(PENDING_POLL)
            pending = self.pending
            if pending is None or pending["effective"] != Effective.NOW.value:
                continue
            s = self.machine.session
            if not (s.busy or s.credit or s.escrow or s.card):
                await self._load_planogram(pending, {})

    async def service_closed(self) -> None:
        """The door closed: a planogram waiting for the next service takes effect now."""
        if self.pending is not None and self.pending["effective"] == Effective.NEXT_SERVICE:
            await self._load_planogram(self.pending, {})

    async def _dex(self, cmd: RequestDex, meta: MetaUpdate) -> None:
        m = self.machine
        now = m.wall()
        # DEX files carry the machine's local wall time, without a zone.
        local = now.astimezone(ZoneInfo(m.config.machine.timezone)).replace(tzinfo=None)

        def build(_db: object) -> tuple[list[Any], MetaUpdate]:
            raw = read_dex(m.config, m.session, m.journal, read_at=local, reset=cmd.args.reset)
            summary = DexSummary.model_validate(summarize(parse_dex(raw)))
            body = DexReadBody(raw=raw, summary=summary, reset=cmd.args.reset, read_at=now)
            ack = _ack(cmd.id, cmd.name, AckOutcome.APPLIED, f"{len(raw)} bytes")
            return [message_for(body), message_for(ack)], meta

        # The lock keeps the session still while the journal thread reads its counters.
        async with m.lock:
            await m.journal.run(lambda: m.journal.enqueue_with(build, now))
        m.wake_telemetry()

    async def _resync(self, cmd: Resync, meta: MetaUpdate) -> None:
        m = self.machine
        after = cmd.args.after_seq

        def build(db: Any) -> tuple[list[Any], MetaUpdate]:
            again = Journal.mark_unsent_after(db, after)
            ack = _ack(cmd.id, cmd.name, AckOutcome.APPLIED, f"{again} events after {after} again")
            return [message_for(snapshot), message_for(ack)], meta

        async with m.lock:
            snapshot = m.outbox.snapshot(m.session)
            await m.journal.run(lambda: m.journal.enqueue_with(build, m.wall()))
        m.wake_telemetry()

    async def _reboot(self, cmd: Reboot, meta: MetaUpdate) -> None:
        m = self.machine
        seqs = await self._ack(cmd, AckOutcome.APPLIED, f"exiting with {REBOOT_EXIT_CODE}", meta)
        if m.telemetry is not None and not await m.telemetry.wait_sent(seqs[0], REBOOT_ACK_TIMEOUT):
            log.warning("reboot: ack not confirmed by the broker; restarting anyway")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REBOOT_IDLE_TIMEOUT
        # No event tells us a vend ended; a reboot is rare enough to poll for it.
        while m.session.busy and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        log.warning("reboot requested by the fleet (command %s)", cmd.id)
        m.request_stop(REBOOT_EXIT_CODE)


def _ack(command_id: str, name: str, outcome: AckOutcome, detail: str = "") -> CommandAckBody:
    return CommandAckBody(command_id=command_id, name=name, outcome=outcome, detail=detail)


def _planogram_problem(selections: tuple[Selection, ...]) -> str | None:
    codes = [s.code for s in selections]
    motors = [(s.unit, s.motor) for s in selections]
    if len(set(codes)) != len(codes):
        return "selection codes repeat"
    if len(set(motors)) != len(motors):
        return "motors used twice"
    if any(s.par > s.capacity for s in selections):
        return "a par is above its capacity"
    return None


def fleet_keeps_planogram(journal: Journal, config_version: str) -> bool:
    """True when the fleet changed prices or the planogram since machine.toml last changed."""
    return journal.get_meta(FLEET_BASE_KEY) == config_version


def config_version_in_force(journal: Journal, default: str) -> str:
    return journal.get_meta(CONFIG_VERSION_KEY) or default
