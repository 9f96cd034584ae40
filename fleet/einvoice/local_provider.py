"""For installations without an e-invoice provider: each document becomes a file.

Files are written atomically (temporary file, fsync, rename, fsync of the folder), so a
crash leaves either the whole document or none. The name is derived from the receipt key
and kind, plus a short hash of the idempotency key so that two keys whose printable forms
collide after making them file-name safe still get two files. Writing the same document
again is an idempotent success; a different document under an existing name is refused.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path

from fleet.einvoice.provider import Accepted, ProviderResult, Rejected, RetryLater, Submission

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(submission: Submission) -> str:
    parts = (submission.key.machine_id, submission.key.series, submission.key.number)
    stem = "_".join(_UNSAFE.sub("-", part) or "-" for part in parts)
    return f"{stem}.{submission.kind.value}.{submission.idempotency_key[-12:]}.xml"


class LocalProvider:
    def __init__(self, folder: Path, *, name: str = "local") -> None:
        self._folder = folder
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def folder(self) -> Path:
        return self._folder

    async def submit(self, submission: Submission) -> ProviderResult:
        return await asyncio.to_thread(self._store, submission)

    def _store(self, submission: Submission) -> ProviderResult:
        name = file_name(submission)
        target = self._folder / name
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            if target.exists():
                return self._compare(target, submission)
            _write_atomically(target, submission.document)
        except FileExistsError:  # another sender stored it a moment ago
            return self._compare(target, submission)
        except OSError as exc:  # full disk, permissions: worth retrying after a fix
            return RetryLater(f"cannot store {name} in {self._folder}: {exc}")
        return Accepted(name)

    def _compare(self, target: Path, submission: Submission) -> ProviderResult:
        if target.read_bytes() == submission.document:
            return Accepted(target.name, duplicate=True)
        return Rejected(f"{target} already holds a different document for this receipt")


def _write_atomically(target: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(prefix=".tmp-", suffix=".xml", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # link() refuses to overwrite: two writers of one receipt cannot clobber each other.
        os.link(temp, target)
    finally:
        os.unlink(temp)
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
