"""DEX reader throughput: typical ~3 KB audit files parsed per second on one core.

Target (TARGETS.md): >= 10,000 files/s; the widest open parser (PHP) does about 5,400 on
this machine class. Baseline measured in the same run: a plain split of the same files
into lines and fields, the floor any parser pays. Three figures for our reader:

* parse        -- parse_dex: lines, fields, envelope, G85 CRC-16/ARC, SE, product records
* +summary     -- plus the dict `vend dex parse --json` prints (totals, selections)
* +typed views -- plus the frozen-dataclass views (selections, cashless, tubes, events)
* crc share    -- the CRC-16/ARC alone over the same bytes (pure Python, the dominant cost)

Run: .venv/bin/python bench/dex_parse.py [--seconds 3] [--files 200] [--profile]
"""
# ruff: noqa: DTZ001 -- DEX times are the machine's wall clock: naive by design.

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from protocols.dex import (
    AuditCounters,
    CashIn,
    CashlessDevice,
    CashOut,
    CoinTube,
    DeviceId,
    Event,
    Selection,
    Tally,
    TubeFill,
    parse_dex,
    summarize,
    write_dex,
)
from protocols.dex.crc import crc16_arc

TARGET = 10_000
PHP_REFERENCE = 5_400


def _tally(rng: random.Random, price: int) -> Tally:
    count = rng.randint(0, 4000)
    interim = rng.randint(0, min(count, 300))
    return Tally(count * price, count, interim * price, interim)


def typical_file(rng: random.Random, number: int) -> str:
    """A realistic audit file: ~30 selections with PA1-PA4, VA/CA/DA blocks, tubes, events."""
    selections = []
    for n in range(30):
        price = rng.choice((50, 60, 70, 80, 100, 120, 150))
        selections.append(
            Selection(
                f"{10 + n}",
                price,
                rng.choice(("COLA 0.5L", "WATER", "CHIPS PAPRIKA", "CHOCO BAR", "")),
                _tally(rng, price),
                Tally(0, rng.randint(0, 3), 0, 0),
                Tally(0, rng.randint(0, 5), 0, 0),
            )
        )
    paid = Tally(
        sum(s.paid.value_init or 0 for s in selections),
        sum(s.paid.count_init or 0 for s in selections),
        sum(s.paid.value_reset or 0 for s in selections),
        sum(s.paid.count_reset or 0 for s in selections),
    )
    start = datetime(2025, 3, 1, 8, 0)
    counters = AuditCounters(
        machine_serial=f"RHV{number:09d}",
        machine_model="SNACK-7",
        firmware="4.12.0",
        location="HCMC D1 LOBBY",
        decimal_places=2,
        currency_numeric="1978",
        currency_alpha="EUR",
        control_board=DeviceId(f"CB{number:08d}", "VMC-MAIN", "4.12.0"),
        paid_vends=paid,
        test_vends=Tally(0, 12, 0, 1),
        free_vends=Tally(0, 3, 0, 0),
        changer=DeviceId("NRI94552100-032", "C2Pv0", "1003"),
        cash_sales=Tally(paid.value_init, paid.count_init, paid.value_reset, paid.count_reset),
        cash_in=CashIn(4790, 3164, 1626, 0, 478905, 316440, 162465, 0),
        cash_out=CashOut(1615, 0, 161555, 0),
        tube_fill=TubeFill(0, 2500),
        tubes=tuple(CoinTube(i, v, rng.randint(0, 160)) for i, v in enumerate((5, 10, 20, 50))),
        cashless=(
            CashlessDevice("DA", DeviceId("3491EE8F54BE", "READER1", "0100"), Tally(0, 0, 0, 0)),
        ),
        selections=tuple(selections),
        events=tuple(
            Event(code, start + timedelta(hours=7 * i), 5)
            for i, code in enumerate(("EGS", "OCF", "EJJ", "EC"))
        ),
        reads_with_reset=41,
        last_read_at=start,
    )
    return write_dex(
        counters,
        read_at=start + timedelta(days=7),
        reset_interim=True,
        communication_id=f"RHV{number % 10_000_000:07d}",
    )


def _rate(work: Callable[[str], object], files: list[str], seconds: float) -> float:
    done = 0
    began = time.perf_counter()
    deadline = began + seconds
    while True:
        for text in files:
            work(text)
        done += len(files)
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - began)


def _baseline(text: str) -> object:
    return [line.split("*") for line in text.splitlines()]


def _summary(text: str) -> object:
    return summarize(parse_dex(text))


def _views(text: str) -> object:
    dex = parse_dex(text)
    return summarize(dex), dex.selections, dex.cashless, dex.tubes, dex.events, dex.read_info


def _crc(text: str) -> object:
    return crc16_arc(text.encode("latin-1"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="cProfile parse + summary")
    args = parser.parse_args()

    rng = random.Random(20250301)
    files = [typical_file(rng, n) for n in range(args.files)]
    mean_bytes = sum(len(f) for f in files) / len(files)
    check = parse_dex(files[0])
    assert check.crc == "ok", check.crc
    assert not check.warnings, check.warnings
    segments = len(check.rows)
    print(f"{len(files)} generated files, mean {mean_bytes:,.0f} bytes, {segments} segments")

    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(lambda: [_summary(t) for t in files * 20])
        pstats.Stats(profile).sort_stats("tottime").print_stats(12)
        return

    rows = [
        ("baseline: str.split into segments and fields", _baseline),
        ("crc-16/arc alone over the same bytes", _crc),
        ("parse_dex (segments, G85, SE, PA records)", parse_dex),
        ("parse_dex + summary (vend dex parse --json)", _summary),
        ("parse_dex + summary + typed views", _views),
    ]
    print(f"{'':48s} {'files/s':>10s} {'MB/s':>8s}")
    rates = {}
    for name, work in rows:
        rate = _rate(work, files, args.seconds)
        rates[name] = rate
        print(f"{name:48s} {rate:10,.0f} {rate * mean_bytes / 1e6:8.1f}")
    parse_rate = rates[rows[2][0]]
    summary_rate = rates[rows[3][0]]
    full_rate = rates[rows[4][0]]
    print(
        f"target >= {TARGET:,} files/s (PHP reference ~{PHP_REFERENCE:,}): "
        f"parse {parse_rate / TARGET:.2f}x target, +summary {summary_rate / TARGET:.2f}x, "
        f"+typed views {full_rate / TARGET:.2f}x, "
        f"baseline/parse = {rates[rows[0][0]] / parse_rate:.1f}x"
    )


if __name__ == "__main__":
    main()
