"""The folder provider: one file per receipt and kind, written whole, idempotent."""

from __future__ import annotations

import os
from pathlib import Path

from fleet.einvoice import (
    Accepted,
    LocalProvider,
    ReceiptKey,
    ReceiptKind,
    Rejected,
    RetryLater,
    Submission,
    idempotency_key,
)
from fleet.einvoice.local_provider import file_name


def submission(machine: str, number: str, document: bytes = b"<HDon/>") -> Submission:
    key = ReceiptKey(machine, "1C26MAA", number)
    return Submission(
        idempotency_key(key, ReceiptKind.ORIGINAL), key, ReceiptKind.ORIGINAL, document
    )


async def test_stores_once_and_answers_duplicates(tmp_path: Path) -> None:
    provider = LocalProvider(tmp_path / "receipts")
    item = submission("vm-0001", "7", b"<HDon>7</HDon>")
    first = await provider.submit(item)
    again = await provider.submit(item)
    assert isinstance(first, Accepted)
    assert again == Accepted(first.ref, duplicate=True)
    files = sorted(p.name for p in (tmp_path / "receipts").iterdir())
    assert files == [first.ref]
    assert (tmp_path / "receipts" / first.ref).read_bytes() == b"<HDon>7</HDon>"


async def test_a_different_document_under_the_same_key_is_refused(tmp_path: Path) -> None:
    provider = LocalProvider(tmp_path)
    await provider.submit(submission("vm-0001", "7", b"<HDon>a</HDon>"))
    result = await provider.submit(submission("vm-0001", "7", b"<HDon>b</HDon>"))
    assert isinstance(result, Rejected)
    assert "different document" in result.reason


async def test_keys_that_look_alike_as_file_names_get_separate_files(tmp_path: Path) -> None:
    provider = LocalProvider(tmp_path)
    one = submission("máy 1", "7")
    two = submission("máy?1", "7")
    assert file_name(one) != file_name(two)
    assert isinstance(await provider.submit(one), Accepted)
    assert isinstance(await provider.submit(two), Accepted)
    assert len(list(tmp_path.iterdir())) == 2
    assert all(p.name.isascii() for p in tmp_path.iterdir())


async def test_an_unwritable_folder_is_retry_later(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    result = await LocalProvider(blocker / "receipts").submit(submission("vm-0001", "1"))
    assert isinstance(result, RetryLater)
    assert "cannot store" in result.reason
    assert not any(name.startswith(".tmp-") for name in os.listdir(tmp_path))
