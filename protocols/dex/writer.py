"""The DEX/EVA-DTS writer: a controller's audit counters as the file a handheld or
telemeter expects, and the counters as they stand after the read.

Cumulative fields (since initialisation, never cleared by a read): VA101/102, VA201/202,
VA301/302, CA201/202, CA305-CA308, CA403/404, CA1002, DA201/202, PA201/202, PA301/302,
PA401/402, EA301. Interim fields (since the last read with reset): VA103/104, VA203/204,
VA303/304, CA203/204, CA301-CA304, CA401/402, CA1001, DA203/204, PA203/204, PA303/304,
PA403/404. State at the time of the read: CA15, CA17, ID/CB/CA1/DA1 identities.

A "read with reset" reports the interim counters as they were (the file is the record of
the interval that ends now), counts itself in EA301, and then the controller clears the
interim counters with :func:`after_read`. Everything here is pure: the read time is
passed in.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime

from protocols.dex.crc import crc16_arc, dex_bytes
from protocols.dex.errors import DexError
from protocols.dex.fields import format_date, format_time
from protocols.dex.model import AuditCounters, DeviceId, Selection, Tally

# A field may not hold the separator, a line end or any control character.
_FORBIDDEN = re.compile(r"[*\x00-\x1f\x7f]")


def _text(value: str, what: str) -> str:
    if _FORBIDDEN.search(value):
        raise DexError(f"{what} {value!r} contains '*', a line break or a control character")
    return value


def _num(value: int | None) -> str:
    return "" if value is None else str(value)


def _line(*fields: str) -> str:
    # Trailing empty fields are dropped, as machines do; middle ones stay as "**".
    items = list(fields)
    while len(items) > 1 and items[-1] == "":
        items.pop()
    return "*".join(items)


def _value_first(sid: str, tally: Tally) -> str:
    return _line(
        sid,
        _num(tally.value_init),
        _num(tally.count_init),
        _num(tally.value_reset),
        _num(tally.count_reset),
    )


def _count_first(sid: str, tally: Tally) -> str:
    return _line(
        sid,
        _num(tally.count_init),
        _num(tally.value_init),
        _num(tally.count_reset),
        _num(tally.value_reset),
    )


def _device(sid: str, device: DeviceId) -> str:
    return _line(
        sid,
        _text(device.serial, f"{sid} serial"),
        _text(device.model, f"{sid} model"),
        _text(device.software, f"{sid} software"),
    )


def _stamp(moment: datetime | None) -> tuple[str, str]:
    if moment is None:
        return "", ""
    return format_date(moment), format_time(moment)


def _selection(selection: Selection) -> list[str]:
    lines = [
        _line(
            "PA1",
            _text(selection.selection, "selection"),
            _num(selection.price),
            _text(selection.name, "selection name"),
        ),
        _count_first("PA2", selection.paid),
    ]
    if selection.test is not None:
        lines.append(_count_first("PA3", selection.test))
    if selection.free is not None:
        lines.append(_count_first("PA4", selection.free))
    return lines


def _data_segments(
    counters: AuditCounters, read_at: datetime, reset_interim: bool, terminal: str
) -> list[str]:
    c = counters
    lines = [
        _line(
            "ID1",
            _text(c.machine_serial, "machine serial"),
            _text(c.machine_model, "machine model"),
            "",
            _text(c.location, "location"),
            "",
            _text(c.asset_number, "asset number"),
        ),
        _line(
            "ID4",
            str(c.decimal_places),
            _text(c.currency_numeric, "currency"),
            _text(c.currency_alpha, "currency"),
        ),
        _line("ID5", *_stamp(read_at)),
        _device("CB1", replace(c.control_board, software=c.control_board.software or c.firmware)),
        _value_first("VA1", c.paid_vends),
        _value_first("VA2", c.test_vends),
        _value_first("VA3", c.free_vends),
        _device("CA1", c.changer),
        _value_first("CA2", c.cash_sales),
    ]
    ci, co, tf = c.cash_in, c.cash_out, c.tube_fill
    cash_in: tuple[int | None, ...] = (ci.value_reset, ci.cashbox_reset, ci.tubes_reset)
    cash_in += (ci.bills_reset, ci.value_init, ci.cashbox_init, ci.tubes_init, ci.bills_init)
    lines.append(_line("CA3", *map(_num, cash_in)))
    lines.append(
        _line(
            "CA4",
            *map(_num, (co.dispensed_reset, co.manual_reset, co.dispensed_init, co.manual_init)),
        )
    )
    lines.append(_line("CA10", _num(tf.filled_reset), _num(tf.filled_init)))
    lines.append(_line("CA15", str(c.tube_value)))
    lines.extend(_line("CA17", _num(t.tube), _num(t.coin_value), _num(t.count)) for t in c.tubes)
    for device in c.cashless:
        if device.slot not in ("DA", "DB"):
            raise DexError(f"cashless slot {device.slot!r} is not DA or DB")
        lines.append(_device(device.slot + "1", device.device))
        lines.append(_value_first(device.slot + "2", device.sales))
    for selection in c.selections:
        lines.extend(_selection(selection))
    lines.extend(
        _line("EA1", _text(e.code, "event code"), *_stamp(e.occurred_at), _num(e.duration))
        for e in c.events
    )
    lines.append(
        _line(
            "EA3",
            str(c.reads_with_reset + (1 if reset_interim else 0)),
            *_stamp(read_at),
            _text(terminal, "terminal"),
            *_stamp(c.last_read_at),
            _text(c.last_read_terminal, "terminal"),
        )
    )
    return lines


def write_dex(
    counters: AuditCounters,
    *,
    read_at: datetime,
    reset_interim: bool,
    communication_id: str,
    transmission: int = 1,
    terminal: str = "",
    version: str = "V0/6",
) -> str:
    """The complete file: DXS, ST, data segments, G85 (CRC-16/ARC), SE, DXE; CR LF line ends.

    ``communication_id`` is DXS01 (3-letter maker code + 7 digits by convention);
    ``terminal`` is the reader's id recorded in EA304. ``read_at`` is the machine's local
    time of this read; ``reset_interim`` says whether this is a read with reset.
    """
    _text(communication_id, "communication id")
    _text(version, "version")
    body = ["ST*001*0001", *_data_segments(counters, read_at, reset_interim, terminal)]
    covered = "".join(line + "\r\n" for line in body)
    crc = crc16_arc(dex_bytes(covered))
    tail = [f"G85*{crc:04X}", f"SE*{len(body) + 2}*0001"]
    head = _line("DXS", communication_id, "VA", version, str(transmission))
    return (
        head
        + "\r\n"
        + covered
        + "".join(line + "\r\n" for line in tail)
        + f"DXE*{transmission}*1\r\n"
    )


def after_read(
    counters: AuditCounters, *, read_at: datetime, reset_interim: bool, terminal: str = ""
) -> AuditCounters:
    """The counters once a read has succeeded: a read with reset clears every interim
    counter and counts itself; any read becomes the "previous read" of the next file."""
    if not reset_interim:
        return replace(counters, last_read_at=read_at, last_read_terminal=terminal)
    c = counters
    return replace(
        c,
        paid_vends=c.paid_vends.after_reset(),
        test_vends=c.test_vends.after_reset(),
        free_vends=c.free_vends.after_reset(),
        cash_sales=c.cash_sales.after_reset(),
        cash_in=c.cash_in.after_reset(),
        cash_out=c.cash_out.after_reset(),
        tube_fill=c.tube_fill.after_reset(),
        cashless=tuple(replace(d, sales=d.sales.after_reset()) for d in c.cashless),
        selections=tuple(
            replace(
                s,
                paid=s.paid.after_reset(),
                test=s.test.after_reset() if s.test is not None else None,
                free=s.free.after_reset() if s.free is not None else None,
            )
            for s in c.selections
        ),
        reads_with_reset=c.reads_with_reset + 1,
        last_read_at=read_at,
        last_read_terminal=terminal,
    )
