"""The layer rule of DESIGN.md, read from the source so it cannot rot.

protocols <- drivers <- controller <- cli;  protocols <- fleet <- cli.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("protocols", "drivers", "controller", "fleet", "cli")
STDLIB = frozenset(sys.stdlib_module_names)

# Which of our packages each package may import.
ALLOWED_INTERNAL = {
    "protocols": {"protocols"},
    "drivers": {"protocols", "drivers"},
    "controller": {"protocols", "drivers", "controller"},
    "fleet": {"protocols", "fleet"},
    "cli": set(PACKAGES),
}
# protocols is pure: standard library and pydantic only, and not the impure parts of it.
PROTOCOLS_THIRD_PARTY = {"pydantic", "pydantic_core", "typing_extensions"}
PROTOCOLS_BANNED_STDLIB = {
    "asyncio", "time", "random", "socket", "os", "subprocess", "threading",
    "selectors", "termios", "tty", "pty", "sqlite3", "secrets", "uuid",
}  # fmt: skip


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _violations() -> list[str]:
    problems: list[str] = []
    for package in PACKAGES:
        for path in _modules(package):
            rel = path.relative_to(ROOT)
            for line, name in _imports(path):
                top = name.split(".")[0]
                where = f"{rel}:{line} imports {name}"
                if top in PACKAGES and top not in ALLOWED_INTERNAL[package]:
                    problems.append(f"{where}: {package} may not import {top}")
                if top == "serial" and package != "drivers":
                    problems.append(f"{where}: only drivers/ touches serial ports")
                if package == "protocols" and top not in PACKAGES:
                    if top in STDLIB and top in PROTOCOLS_BANNED_STDLIB:
                        problems.append(f"{where}: protocols/ is pure (no I/O, clock, randomness)")
                    if top not in STDLIB and top not in PROTOCOLS_THIRD_PARTY:
                        problems.append(f"{where}: protocols/ uses only stdlib and pydantic")
    return problems


def _clock_reads(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"now", "utcnow", "today"}
    ]


def test_packages_respect_the_layer_rule() -> None:
    assert _violations() == []


def test_protocols_never_read_the_clock() -> None:
    bad = [f"{path}:{line}" for path in _modules("protocols") for line in _clock_reads(path)]
    assert bad == []


@pytest.mark.parametrize("side", ["controller", "fleet"])
def test_at_most_one_mqtt_module_per_side(side: str) -> None:
    users = {
        str(path.relative_to(ROOT))
        for path in _modules(side)
        for _, name in _imports(path)
        if name.split(".")[0] in {"aiomqtt", "paho"}
    }
    assert len(users) <= 1, users


def test_rule_checker_catches_a_violation(tmp_path: Path) -> None:
    # The checker itself must be able to fail: feed it a forbidden import.
    bad = tmp_path / "bad.py"
    bad.write_text("import fleet.store\nfrom controller import journal\n", encoding="utf-8")
    names = [name for _, name in _imports(bad)]
    assert names == ["fleet.store", "controller"]
    clock = tmp_path / "clock.py"
    clock.write_text("import datetime\nx = datetime.datetime.now()\n", encoding="utf-8")
    assert _clock_reads(clock) == [2]
