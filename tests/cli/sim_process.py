"""`vend sim dispenser|cabinet` in a process of its own, for the CLI tests of both."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

VEND = str(Path(sys.executable).with_name("vend"))


def start(device: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [VEND, "sim", device, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@contextlib.contextmanager
def serving(device: str, *args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """The simulator started with ``--json`` and its ready line; killed if still running."""
    proc = start(device, "--json", *args)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"no ready line; stderr: {proc.stderr.read() if proc.stderr else ''}"
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def refused(device: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the simulator with arguments it should refuse before serving anything."""
    return subprocess.run(
        [VEND, "sim", device, *args], capture_output=True, text=True, timeout=30, check=False
    )
