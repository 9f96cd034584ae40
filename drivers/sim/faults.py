"""Fault scripts for the MDB simulator: timed device actions and link faults.

A script is a TOML or JSON file of steps, each at ``at`` seconds after start::

    [[step]]
    at = 2.0
    device = "changer"
    action = "jam"
    args = {}

    [[step]]
    at = 5.0
    link = "slow"
    ms = 30

JSON takes the same steps as ``{"step": [...]}`` or a bare list. Device steps call
the peripheral's ``control(action, args, now)``; link steps act on the adapter
simulator: ``slow`` (``ms``), ``drop_answers`` / ``lose_acks`` (``count``, default 1,
-1 = until cleared) and ``clear``. Validation names the step (1-based) and the key.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.sim.adapter import QibixxAdapterSim
from drivers.sim.base import SimPeripheral

LINK_FAULTS = ("slow", "drop_answers", "lose_acks", "clear")


class FaultScriptError(ValueError):
    """A fault script that cannot run as written."""


@dataclass(frozen=True, slots=True)
class DeviceStep:
    at: float
    device: str
    action: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LinkStep:
    at: float
    fault: str
    ms: float = 0.0
    count: int = 1


Step = DeviceStep | LinkStep


def load_script(path: Path) -> list[Step]:
    """Read and validate a fault script (``.json`` as JSON, anything else as TOML)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FaultScriptError(f"cannot read fault script {path}: {exc}") from exc
    try:
        doc: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FaultScriptError(f"fault script {path} does not parse: {exc}") from exc
    return parse_steps(doc)


def parse_steps(doc: object) -> list[Step]:
    """Validate the parsed document; steps come back sorted by time (stable)."""
    raw = doc
    if isinstance(doc, dict):
        extra = sorted(set(doc) - {"step", "steps"})
        if extra:
            raise FaultScriptError(f"unknown top-level key {extra[0]!r} (expected 'step')")
        raw = doc.get("step", doc.get("steps", []))
    if not isinstance(raw, list):
        raise FaultScriptError("a fault script is a list of steps ('step' array)")
    steps = [_parse_step(i, item) for i, item in enumerate(raw, start=1)]
    return sorted(steps, key=lambda s: s.at)


def _parse_step(n: int, item: object) -> Step:
    if not isinstance(item, dict):
        raise FaultScriptError(f"step {n}: must be a table/object, not {type(item).__name__}")
    at = item.get("at")
    if isinstance(at, bool) or not isinstance(at, int | float) or at < 0:
        raise FaultScriptError(f"step {n}: 'at' must be a number of seconds >= 0, not {at!r}")
    if ("device" in item) == ("link" in item):
        raise FaultScriptError(f"step {n}: needs exactly one of 'device' or 'link'")
    if "device" in item:
        _only(n, item, {"at", "device", "action", "args"})
        device, action, args = item["device"], item.get("action"), item.get("args", {})
        if not isinstance(device, str) or not device:
            raise FaultScriptError(f"step {n}: 'device' must be a device name")
        if not isinstance(action, str) or not action:
            raise FaultScriptError(f"step {n}: 'action' must be a non-empty string")
        if not isinstance(args, dict):
            raise FaultScriptError(f"step {n}: 'args' must be a table/object")
        return DeviceStep(float(at), device, action, dict(args))
    fault = item["link"]
    if fault not in LINK_FAULTS:
        raise FaultScriptError(f"step {n}: 'link' must be one of {', '.join(LINK_FAULTS)}")
    if fault == "slow":
        _only(n, item, {"at", "link", "ms"})
        ms = item.get("ms")
        if isinstance(ms, bool) or not isinstance(ms, int | float) or ms < 0:
            raise FaultScriptError(f"step {n}: 'ms' must be a number >= 0, not {ms!r}")
        return LinkStep(float(at), fault, ms=float(ms))
    if fault == "clear":
        _only(n, item, {"at", "link"})
        return LinkStep(float(at), fault)
    _only(n, item, {"at", "link", "count"})
    count = item.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < -1 or count == 0:
        raise FaultScriptError(f"step {n}: 'count' must be an integer >= 1 or -1, not {count!r}")
    return LinkStep(float(at), fault, count=count)


def _only(n: int, item: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(item) - allowed)
    if extra:
        raise FaultScriptError(
            f"step {n}: unknown key {extra[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What happened when a step ran (a device may refuse an action; that is not fatal)."""

    step: Step
    ok: bool
    detail: str


class FaultRunner:
    """Runs validated steps against named devices and the adapter, on the caller's clock."""

    def __init__(
        self,
        steps: list[Step],
        devices: Mapping[str, SimPeripheral],
        adapter: QibixxAdapterSim | None,
        start: float,
    ) -> None:
        for n, step in enumerate(steps, start=1):
            if isinstance(step, DeviceStep) and step.device not in devices:
                known = ", ".join(sorted(devices))
                raise FaultScriptError(f"step {n}: no device {step.device!r} (known: {known})")
            if isinstance(step, LinkStep) and adapter is None:
                raise FaultScriptError(f"step {n}: link faults need the adapter simulator")
        self._steps = list(steps)
        self._devices = devices
        self._adapter = adapter
        self.start = start
        self.outcomes: list[StepOutcome] = []

    def next_time(self) -> float | None:
        """When the next step is due, or None when the script is done."""
        return self.start + self._steps[0].at if self._steps else None

    def run_due(self, now: float) -> list[StepOutcome]:
        done: list[StepOutcome] = []
        while self._steps and self.start + self._steps[0].at <= now:
            done.append(self._run(self._steps.pop(0), now))
        self.outcomes += done
        return done

    def _run(self, step: Step, now: float) -> StepOutcome:
        if isinstance(step, DeviceStep):
            try:
                result = self._devices[step.device].control(step.action, step.args, now)
            except (ValueError, KeyError, TypeError) as exc:
                return StepOutcome(step, ok=False, detail=str(exc))
            return StepOutcome(step, ok=True, detail=json.dumps(result, default=str))
        assert self._adapter is not None
        if step.fault == "clear":
            self._adapter.control("clear_faults", {}, now)
        elif step.fault == "slow":
            self._adapter.control("slow", {"ms": step.ms}, now)
        else:
            self._adapter.control(step.fault, {"count": step.count}, now)
        return StepOutcome(step, ok=True, detail=f"link {step.fault}")
