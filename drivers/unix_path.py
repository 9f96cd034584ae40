"""Unix socket paths of any length.

``sockaddr_un`` holds at most 107 bytes of path, and a deep data folder (a test's
temporary directory, an operator's long install path) easily exceeds it. On Linux a
socket in such a folder is still reachable through ``/proc/self/fd/N/name``, where N is
the folder opened for the moment of the ``bind`` or ``connect``: the socket file itself
lives at the real path, so every other process sees it there.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

MAX_PATH_BYTES = 107  # sizeof(sun_path) - 1 on Linux


@contextlib.contextmanager
def reachable(path: str | Path) -> Iterator[str]:
    """``path``, or a short alias of it while the block runs (bind or connect inside)."""
    text = str(path)
    if len(os.fsencode(text)) <= MAX_PATH_BYTES or not os.path.isdir("/proc/self/fd"):
        yield text
        return
    folder, name = os.path.split(os.path.abspath(text))
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{name}"
    finally:
        os.close(fd)
