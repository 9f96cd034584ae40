"""The tolerant DEX/EVA-DTS reader: what real machines send, read without failing.

Accepted and reported as warnings (never as errors): CR LF, LF or CR line ends; a
collector's wrapper before DXS and after DXE; no envelope at all; truncated files (no SE,
no DXE, a cut-off last line); wrong SE counts; a G85 that does not match; control
characters from the transport; unknown and vendor segments (kept verbatim, in order).
Only input with no DEX segment at all (empty, binary, some other text) raises DexError.

The G85 CRC covers every byte from the S of ST up to and including the CR LF before the
G85 line, so it is computed over the lines with CR LF restored (files whose CRs were
stripped on the way still verify).
"""

from __future__ import annotations

import re
from itertools import compress, count, repeat
from operator import itemgetter

from protocols.dex.crc import crc16_arc, dex_bytes
from protocols.dex.dexfile import CrcStatus, DexFile
from protocols.dex.errors import DexError
from protocols.dex.fields import field, number

_ENVELOPE = frozenset({"DXS", "ST", "G85", "SE", "DXE"})
_FAMILIES = (
    "ID", "CB", "VA", "CA", "BA", "DA", "DB", "TA", "PA", "LA", "EA", "MA", "AM", "PP", "SA",
    "SD", "MC", "AC", "BC", "EC", "FA", "LS", "LE", "VC", "VD", "ZA",
)  # fmt: skip
# Ids that count as "this is DEX"; anything else is kept but does not make a file DEX.
_KNOWN = _ENVELOPE | {f"{family}{n}" for family in _FAMILIES for n in range(1, 25)} | {"LS", "LE"}
_PRODUCT = frozenset(f"PA{n}" for n in range(1, 10))
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{1,7}\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")
_ST_LINE = re.compile(r"(?m)^ST\*")
_HEX = re.compile(r"[0-9A-Fa-f]{1,4}\Z")
_MAX_ODD_LINES = 5
_FIRST = itemgetter(0)


def parse_dex_bytes(data: bytes) -> DexFile:
    """Parse raw bytes. DEX is ASCII; Latin-1 keeps every byte (and the CRC) intact.

    A UTF-16 byte-order mark (a file re-saved by a Windows tool) is honoured and a UTF-8
    mark is dropped; anything else is read as Latin-1, never assumed to be UTF-8.
    """
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return parse_dex(data.decode("utf-16"))
        except UnicodeDecodeError:
            raise DexError("not DEX: broken UTF-16 text") from None
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    return parse_dex(data.decode("latin-1"))


def parse_dex(text: str) -> DexFile:
    """Parse the text of a DEX/EVA-DTS audit file. Raises DexError only for non-DEX input."""
    if not text or text.isspace():
        raise DexError("not DEX: the input is empty")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    warnings: list[str] = []
    removed = 0
    # isprintable is a fast C scan; only text that fails it pays for the regex.
    if not text.replace("\n", "").replace("\t", "").isprintable() and _CONTROL.search(text):
        before = len(text)
        text = _CONTROL.sub("", text)
        removed = before - len(text)
        warnings.append(f"removed {removed} control character(s) left by the transport")
    prefix, body, suffix, envelope = _split_wrapper(text, warnings)
    return _parse_body(
        prefix=prefix,
        body=body,
        suffix=suffix,
        envelope=envelope,
        warnings=warnings,
        removed=removed,
    )


def _split_wrapper(text: str, warnings: list[str]) -> tuple[str, str, str, bool]:
    """Cut a collector's wrapper off: the body runs from the first DXS (else ST) to the
    end of the last DXE line."""
    start = text.find("DXS*")
    if start < 0:
        found = _ST_LINE.search(text)
        if found is None:
            warnings.append("no DXS/ST envelope: reading the segments as they come")
            return "", text, "", False
        start = found.start()
        warnings.append("no DXS segment: reading from ST")
    end = text.rfind("\nDXE", start)
    if end < 0 and text.startswith("DXE", start):
        end = start - 1
    suffix = ""
    if end >= 0:
        line_end = text.find("\n", end + 1)
        if line_end >= 0:
            suffix = text[line_end + 1 :]
            text = text[: line_end + 1]
    return text[:start], text[start:], suffix.strip("\n"), True


def _what_it_is(body: str, removed: int) -> str:
    """Name the input that holds no DEX segment, for the error message."""
    odd = removed + sum(1 for c in body if not (c.isprintable() or c in "\n\t"))
    if odd * 10 > len(body) + removed:
        return "binary data, not text"
    return "no DEX segment (DXS, ST, ID1, VA1, PA1, ...) found"


def _fix_odd_ids(
    kept: list[str], rows: list[list[str]], ids: list[str], numbers: list[int], odd: set[str]
) -> list[str]:
    """Drop whitespace-only lines, normalise ids with stray spaces or lower case, and name
    the lines that do not look like segments at all. Edits the lists in place."""
    notes: list[str] = []
    blank: list[int] = []
    for index, sid in enumerate(ids):
        if sid not in odd:
            continue
        if kept[index].isspace():
            blank.append(index)
            continue
        fixed = sid.strip().upper()
        rows[index][0] = ids[index] = fixed
        if not _SEGMENT_ID.match(fixed):
            notes.append(f"line {numbers[index]}: {sid[:20]!r} is not a segment id")
    for index in reversed(blank):
        del kept[index], rows[index], ids[index], numbers[index]
    if len(notes) > _MAX_ODD_LINES:
        more = len(notes) - _MAX_ODD_LINES
        notes[_MAX_ODD_LINES:] = [f"... and {more} more lines that are not segments"]
    return notes


def _parse_body(
    *, prefix: str, body: str, suffix: str, envelope: bool, warnings: list[str], removed: int
) -> DexFile:
    # Every per-line step is a C-level map; Python only looks at the envelope segments.
    lines = body.split("\n")
    first_line = prefix.count("\n") + 1
    kept = list(filter(None, lines))
    numbers = list(compress(count(first_line), lines))
    rows = list(map(str.split, kept, repeat("*")))
    ids = list(map(_FIRST, rows))
    unique = set(ids)
    odd = unique.difference(_KNOWN)
    if len(odd) == len(unique):
        raise DexError(f"not DEX: {_what_it_is(body, removed)}")
    if odd:
        warnings.extend(_fix_odd_ids(kept, rows, ids, numbers, odd))
    fields = tuple(map(tuple, rows))

    st: tuple[str, ...] | None = None
    st_index = 0
    sets = 0
    dxs_seen = False
    se_seen = False
    dxe: tuple[str, ...] | None = None
    se_declared: int | None = None
    se_actual: int | None = None
    checks: list[tuple[str, int, int]] = []  # (G85 text, first covered line, G85 line)
    for index in compress(count(), map(_ENVELOPE.__contains__, ids)):
        row = fields[index]
        sid = row[0]
        if sid == "ST":
            st, st_index, sets = row, index, sets + 1
        elif sid == "G85":
            start = numbers[st_index if st is not None else (1 if dxs_seen else 0)]
            checks.append((field(row, 1), start - first_line, numbers[index] - first_line))
        elif sid == "SE":
            se_seen = True
            se_declared = number(field(row, 1))
            if st is not None:
                se_actual = index - st_index + 1
                _check_se(row, st, se_declared, se_actual, warnings)
        elif sid == "DXS":
            dxs_seen = True
        else:
            dxe = row

    first_pa1 = next(compress(count(), map("PA1".__eq__, ids)), len(ids))
    orphans = sum(map(_PRODUCT.__contains__, ids[:first_pa1]))
    if orphans:
        warnings.append(f"{orphans} product segment(s) before any PA1 (not grouped)")
    crc, declared, computed = _check_crcs(lines, checks, warnings)
    _check_ending(
        body,
        fields,
        numbers,
        warnings,
        envelope=envelope,
        has_st=st is not None,
        se_seen=se_seen,
        dxs_seen=dxs_seen,
        dxe=dxe,
    )
    if dxe is not None and sets:
        declared_sets = number(field(dxe, 2))
        if declared_sets is not None and declared_sets != sets:
            warnings.append(f"DXE declares {declared_sets} transaction set(s), found {sets}")
    _check_duplicates(rows, ids, first_pa1, warnings)
    return DexFile(
        rows=fields,
        ids=tuple(ids),
        line_numbers=tuple(numbers),
        warnings=tuple(warnings),
        crc=crc,
        crc_declared=declared,
        crc_computed=computed,
        segment_count_declared=se_declared,
        segment_count_actual=se_actual,
        envelope=envelope,
        prefix=prefix,
        suffix=suffix,
    )


def _check_se(
    se: tuple[str, ...],
    st: tuple[str, ...],
    declared: int | None,
    actual: int,
    warnings: list[str],
) -> None:
    control, st_control = field(se, 2).strip(), field(st, 2).strip()
    if control != st_control:
        warnings.append(f"SE control number {control!r} differs from ST {st_control!r}")
    if declared != actual:
        written = field(se, 1).strip() or "no"
        warnings.append(f"SE declares {written} segments, counted {actual} from ST through SE")


def _check_crcs(
    lines: list[str], checks: list[tuple[str, int, int]], warnings: list[str]
) -> tuple[CrcStatus, int | None, int | None]:
    """Verify every G85; the first one's declared and computed values are returned."""
    if not checks:
        return "absent", None, None
    status: CrcStatus = "ok"
    first: tuple[int | None, int | None] | None = None
    for text, start, end in checks:
        covered = lines[start:end]
        computed = crc16_arc(dex_bytes("\r\n".join(covered) + "\r\n"))
        declared_text = text.strip()
        declared = int(declared_text, 16) if _HEX.match(declared_text) else None
        if first is None:
            first = (declared, computed)
        if declared is None:
            status = "mismatch"
            warnings.append(f"G85 {declared_text!r} is not a CRC (computed {computed:04X})")
        elif declared != computed:
            if crc16_arc(dex_bytes("\n".join(covered) + "\n")) == declared:
                warnings.append("G85 matches only over LF line ends, not CR LF")
                continue
            status = "mismatch"
            warnings.append(f"G85 CRC mismatch: file says {declared_text}, computed {computed:04X}")
    assert first is not None
    return status, first[0], first[1]


def _check_ending(
    body: str,
    fields: tuple[tuple[str, ...], ...],
    numbers: list[int],
    warnings: list[str],
    *,
    envelope: bool,
    has_st: bool,
    se_seen: bool,
    dxs_seen: bool,
    dxe: tuple[str, ...] | None,
) -> None:
    if dxs_seen and not has_st:
        warnings.append("no ST transaction set inside DXS/DXE: CRC and SE cannot be checked")
    if has_st and not se_seen:
        warnings.append("no SE segment: the file may be truncated")
    if dxs_seen and dxe is None:
        warnings.append("no DXE segment: the file may be truncated")
    if envelope and not body.endswith("\n") and fields[-1][0] not in ("DXE", "SE", "G85"):
        text = "*".join(fields[-1])[:40]
        warnings.append(f"line {numbers[-1]} has no line end and may be cut off: {text!r}")


def _check_duplicates(
    rows: list[list[str]], ids: list[str], first_pa1: int, warnings: list[str]
) -> None:
    keys = [
        rows[i][1].strip() if len(rows[i]) > 1 else ""
        for i in compress(count(first_pa1), map("PA1".__eq__, ids[first_pa1:]))
    ]
    if len(set(keys)) != len(keys):
        seen: set[str] = set()
        for key in keys:
            if key in seen:
                warnings.append(f"selection {key!r} appears in more than one PA1")
            seen.add(key)
