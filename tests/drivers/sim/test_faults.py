from __future__ import annotations

import json
from pathlib import Path

import pytest

from drivers.sim.adapter import QibixxAdapterSim
from drivers.sim.base import SimBus
from drivers.sim.faults import (
    DeviceStep,
    FaultRunner,
    FaultScriptError,
    LinkStep,
    load_script,
    parse_steps,
)
from tests.drivers.link.fakes import FakeChanger

TOML = """
[[step]]
at = 5.0
link = "slow"
ms = 30

[[step]]
at = 2
device = "changer"
action = "deposit"
args = { type = 2 }

[[step]]
at = 6.0
link = "lose_acks"

[[step]]
at = 7.0
link = "clear"
"""


def test_toml_script_loads_sorted_by_time(tmp_path: Path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text(TOML, encoding="utf-8")
    assert load_script(path) == [
        DeviceStep(2.0, "changer", "deposit", {"type": 2}),
        LinkStep(5.0, "slow", ms=30.0),
        LinkStep(6.0, "lose_acks", count=1),
        LinkStep(7.0, "clear"),
    ]


def test_json_script_as_a_bare_list(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    path.write_text(json.dumps([{"at": 1, "link": "drop_answers", "count": -1}]), encoding="utf-8")
    assert load_script(path) == [LinkStep(1.0, "drop_answers", count=-1)]


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"step": [{"device": "changer", "action": "jam"}]}, "step 1: 'at' must be a number"),
        ([{"at": -1, "link": "clear"}], "step 1: 'at' must be a number of seconds >= 0"),
        ([{"at": True, "link": "clear"}], "step 1: 'at'"),
        (
            [{"at": 1, "link": "clear"}, {"at": 2}],
            "step 2: needs exactly one of 'device' or 'link'",
        ),
        ([{"at": 1, "device": "changer", "link": "slow"}], "step 1: needs exactly one"),
        ([{"at": 1, "device": "changer"}], "step 1: 'action' must be a non-empty string"),
        ([{"at": 1, "device": "", "action": "jam"}], "step 1: 'device' must be a device name"),
        ([{"at": 1, "device": "changer", "action": "jam", "args": []}], "step 1: 'args' must be"),
        (
            [{"at": 1, "device": "changer", "action": "jam", "when": 2}],
            "step 1: unknown key 'when'",
        ),
        ([{"at": 1, "link": "slow"}], "step 1: 'ms' must be a number >= 0"),
        ([{"at": 1, "link": "slow", "ms": 30, "count": 2}], "step 1: unknown key 'count'"),
        ([{"at": 1, "link": "melt"}], "step 1: 'link' must be one of slow, drop_answers"),
        ([{"at": 1, "link": "lose_acks", "count": 0}], "step 1: 'count' must be an integer >= 1"),
        ([{"at": 1, "link": "clear", "ms": 1}], "step 1: unknown key 'ms'"),
        (["jam"], "step 1: must be a table/object"),
        ({"steps": 3}, "a fault script is a list of steps"),
        ({"stepz": []}, "unknown top-level key 'stepz'"),
    ],
)
def test_validation_names_step_and_key(doc: object, problem: str) -> None:
    with pytest.raises(FaultScriptError, match=problem):
        parse_steps(doc)


def test_unreadable_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(FaultScriptError, match="cannot read fault script"):
        load_script(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[step]\nat = ", encoding="utf-8")
    with pytest.raises(FaultScriptError, match="does not parse"):
        load_script(bad)


def test_runner_refuses_unknown_devices() -> None:
    steps = parse_steps([{"at": 1, "device": "hopper", "action": "jam"}])
    with pytest.raises(FaultScriptError, match="step 1: no device 'hopper' \\(known: changer\\)"):
        FaultRunner(steps, {"changer": FakeChanger()}, None, start=0.0)


def test_runner_plays_steps_on_the_callers_clock() -> None:
    changer = FakeChanger()
    adapter = QibixxAdapterSim(SimBus(changer))
    steps = parse_steps(
        [
            {"at": 1.0, "device": "changer", "action": "deposit", "args": {"type": 3}},
            {"at": 2.0, "link": "slow", "ms": 25},
            {"at": 2.5, "device": "changer", "action": "jam"},
            {"at": 3.0, "link": "clear"},
        ]
    )
    runner = FaultRunner(steps, {"changer": changer}, adapter, start=100.0)
    assert runner.next_time() == 101.0
    assert runner.run_due(100.5) == []
    assert [o.ok for o in runner.run_due(101.0)] == [True]
    assert changer.pending[-1] == b"\x43\x05"
    outcomes = runner.run_due(102.9)
    assert adapter.faults.slow_ms == 25.0
    assert [o.ok for o in outcomes] == [True, False]  # the fake changer cannot jam
    assert "no action 'jam'" in outcomes[1].detail
    runner.run_due(103.0)
    assert adapter.faults.slow_ms == 0.0
    assert runner.next_time() is None
