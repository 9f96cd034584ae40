"""`vend audit`: cash counts, settlement imports, reconciliation, period locks, adjustments,
signed exports (CSV/XLSX/PDF + manifest) and their verification; `vend audit receipts` is
the e-receipt transmission queue (cli.receipts).

Exit codes: 0 ok, 1 error (bad input, database unusable, period locked or not, an export
that fails verification).
Amounts are integers in minor units; signed amounts follow "over = positive".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine

from cli import receipts as receipts_cli
from fleet.audit.amounts import parse_cash, parse_time
from fleet.audit.export_bundle import export_period, parse_formats
from fleet.audit.inputs import (
    CashCountEntry,
    import_cash_counts,
    import_settlements,
    load_mapping,
    record_cash_count,
)
from fleet.audit.lock import Adjustment, adjustments, lock_period, period_report, record_adjustment
from fleet.audit.manifest import verify_export
from fleet.audit.periods import date_period, month_period
from fleet.audit.receipts import QueueReceiptSource, ReceiptSource, SalesReceiptSource
from fleet.audit.records import AuditError, ReconcileConfig
from fleet.audit.report import Category, sha256_hex
from fleet.audit.signing import (
    ALGORITHM,
    Trust,
    TrustedKeyId,
    load_hmac_key,
    load_public_key,
    load_signing_key,
    public_path_for,
    write_key_pair,
)
from fleet.audit.sites import set_site
from fleet.store.db import DEFAULT_DB_URL, StoreError, make_engine
from fleet.store.schema import require_migrated

EXIT_ERROR = 1

app = typer.Typer(
    no_args_is_help=True,
    help="Auditing: cash counts, settlement files, reconciliation, locked periods.",
)
app.add_typer(receipts_cli.app, name="receipts")

DbOption = Annotated[
    str, typer.Option("--db", envvar="VEND_DB", help="Database URL (as for `vend fleet`).")
]
TzOption = Annotated[
    str, typer.Option("--tz", envvar="VEND_TZ", help="Time zone of dates and naive times.")
]
CurrencyOption = Annotated[str, typer.Option(help="Currency of every amount (ISO 4217).")]
VatOption = Annotated[
    int, typer.Option("--vat-bp", min=0, max=10_000, help="VAT rate in basis points.")
]
ReceiptsOption = Annotated[
    str,
    typer.Option(
        "--receipts",
        help="Where receipts issued come from: queue (the transmission queue, only accepted "
        "documents count) or sales (the number on each sale, assumed transmitted).",
    ),
]
DEFAULT_TZ = "Asia/Ho_Chi_Minh"


def _now() -> datetime:
    return datetime.now(UTC)


def _fail(command: str, message: str) -> typer.Exit:
    typer.echo(f"vend audit {command}: {message}", err=True)
    return typer.Exit(code=EXIT_ERROR)


@contextmanager
def _store(command: str, db: str) -> Iterator[Engine]:
    try:
        engine = make_engine(db)
    except StoreError as exc:
        raise _fail(command, str(exc)) from None
    try:
        require_migrated(engine)
        yield engine
    except (StoreError, AuditError) as exc:
        raise _fail(command, str(exc)) from None
    finally:
        engine.dispose()


def _cash(command: str, name: str, text: str) -> int:
    try:
        return parse_cash(text)
    except AuditError as exc:
        raise _fail(command, f"{name}: {exc}") from None


@app.command("cash-count")
def cash_count(
    *,
    machine: Annotated[str, typer.Option(help="Machine id.")],
    visit: Annotated[str, typer.Option(help="Service visit id, or your own visit reference.")],
    coins: Annotated[str, typer.Option(help="Coins counted: a total or VALUExCOUNT,...")],
    bills: Annotated[str, typer.Option(help="Bills counted: a total or VALUExCOUNT,...")],
    change_added: Annotated[
        str, typer.Option(help="Change put into the tubes from this cash.")
    ] = "0",
    refunds_by_hand: Annotated[
        str, typer.Option(help="Refunds paid out of this cash by hand.")
    ] = "0",
    at: Annotated[
        str | None, typer.Option(help="When collected (ISO; default: the visit's time).")
    ] = None,
    replace: Annotated[bool, typer.Option(help="Correct a count already recorded.")] = False,
    db: DbOption = DEFAULT_DB_URL,
    tz: TzOption = DEFAULT_TZ,
    currency: CurrencyOption = "VND",
) -> None:
    """Record the cash counted from one collection."""
    name = "cash-count"
    amounts = {
        key: _cash(name, f"--{key.replace('_', '-')}", text)
        for key, text in (
            ("coins", coins),
            ("bills", bills),
            ("change_added", change_added),
            ("refunds_by_hand", refunds_by_hand),
        )
    }
    with _store(name, db) as engine:
        entry = CashCountEntry(
            machine=machine,
            visit=visit,
            coins=amounts["coins"],
            bills=amounts["bills"],
            change_added=amounts["change_added"],
            refunds_by_hand=amounts["refunds_by_hand"],
            at=parse_time(at, "iso", tz) if at else None,
            currency=currency,
        )
        with engine.begin() as conn:
            outcome = record_cash_count(conn, entry, now=_now(), replace_existing=replace)
    total = amounts["coins"] + amounts["bills"]
    typer.echo(f"{machine} visit {visit}: {outcome} ({total} {currency} counted)")


@app.command("import-cash")
def import_cash(
    file: Annotated[Path, typer.Argument(help="CSV: machine,visit,coins,bills[,at,...]")],
    replace: Annotated[bool, typer.Option(help="Correct counts already recorded.")] = False,
    db: DbOption = DEFAULT_DB_URL,
    tz: TzOption = DEFAULT_TZ,
    currency: CurrencyOption = "VND",
) -> None:
    """Import cash counts from a CSV file (safe to repeat)."""
    with _store("import-cash", db) as engine:
        result = import_cash_counts(
            engine, file, now=_now(), timezone=tz, currency=currency, replace_existing=replace
        )
    typer.echo(
        f"{file.name}: {result.rows} rows, {result.imported} recorded, {result.unchanged} unchanged"
    )


@app.command("import-settlement")
def import_settlement(
    file: Annotated[Path, typer.Argument(help="The processor's settlement CSV.")],
    mapping: Annotated[
        Path | None, typer.Option(help="Column mapping, TOML or JSON (see docs/auditing.md).")
    ] = None,
    column: Annotated[
        list[str] | None,
        typer.Option(help="FIELD=HEADER, overrides or replaces the mapping file; repeatable."),
    ] = None,
    db: DbOption = DEFAULT_DB_URL,
) -> None:
    """Import a cashless settlement file (rows already imported are skipped)."""
    name = "import-settlement"
    overrides: dict[str, str] = {}
    for item in column or []:
        key, sep, header = item.partition("=")
        if not sep or not key.strip() or not header:
            raise _fail(name, f"--column {item!r}: expected FIELD=HEADER")
        overrides[key.strip()] = header
    with _store(name, db) as engine:
        result = import_settlements(engine, file, load_mapping(mapping, overrides), now=_now())
    note = " (this file was imported before)" if result.already_imported else ""
    typer.echo(
        f"{file.name}: {result.rows} rows, {result.imported} new, "
        f"{result.unchanged} already stored{note}"
    )


def _receipts(command: str, name: str, config: ReconcileConfig) -> ReceiptSource:
    if name == "queue":
        return QueueReceiptSource(config.currency)
    if name == "sales":
        return SalesReceiptSource(config.vat_rate_bp)
    raise _fail(command, f"--receipts {name!r}: expected queue or sales")


def _config(tz: str, currency: str, vat_bp: int) -> ReconcileConfig:
    try:
        ZoneInfo(tz)
    except (ValueError, KeyError):
        raise _fail("reconcile", f"unknown time zone {tz!r}") from None
    return ReconcileConfig(currency=currency, vat_rate_bp=vat_bp, timezone=tz)


@app.command()
def reconcile(
    *,
    start: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First day.")],
    end: Annotated[
        datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Last day (inclusive).")
    ],
    machine: Annotated[
        list[str] | None, typer.Option(help="Only these machines; repeatable.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the canonical JSON.")] = False,
    db: DbOption = DEFAULT_DB_URL,
    tz: TzOption = DEFAULT_TZ,
    currency: CurrencyOption = "VND",
    vat_bp: VatOption = 1000,
    receipts: ReceiptsOption = "queue",
) -> None:
    """Reconcile a period; a locked month prints exactly what was locked."""
    config = _config(tz, currency, vat_bp)
    source = _receipts("reconcile", receipts, config)
    with _store("reconcile", db) as engine:
        period = date_period(start.date(), end.date(), tz)
        data, lock = period_report(engine, period, config, machines=machine, receipts=source)
        with engine.connect() as conn:
            later = adjustments(conn, period.label) if lock else []
    if as_json:
        typer.get_binary_stream("stdout").write(data + b"\n")
        return
    console = Console()
    if lock is not None:
        console.print(
            f"[bold]locked[/bold] by {lock.locked_by} at {lock.locked_at:%Y-%m-%d %H:%M} UTC, "
            f"sha256 {lock.sha256}",
            highlight=False,
        )
    _render(console, json.loads(data))
    if later:
        table = Table(title="adjustments after lock")
        for name in ("when", "by", "machine", "category", "amount", "why"):
            table.add_column(name, justify="right" if name == "amount" else "left")
        for a in later:
            table.add_row(
                f"{a.recorded_at:%Y-%m-%d %H:%M}", a.recorded_by, a.machine or "",
                a.category.value, f"{a.amount:+,}", a.why,
            )  # fmt: skip
        console.print(table)


def _render(console: Console, report: dict[str, Any]) -> None:
    period = report["period"]
    rows = Table(title=f"{period['label']} ({report['currency']}, over = positive)")
    for name in ("machine", "#", "start", "end", "telemetry", "DEX paid", "settled",
                 "receipts", "cash expected", "counted", "over/short", "issues"):  # fmt: skip
        rows.add_column(name, justify="left" if name in {"machine", "start", "end"} else "right")
    for row in report["rows"]:
        t = row["totals"]
        rows.add_row(
            row["machine"], str(row["index"]), row["start"][:16], row["end"][:16],
            f"{t['telemetry_value']:,}", f"{t['dex_paid']:,}", f"{t['settled_gross']:,}",
            f"{t['receipts_value']:,}",
            f"{t['cash_expected']:,}" if row["cash_visit"] else "",
            f"{t['cash_counted']:,}" if row["cash_visit"] else "",
            f"{t['cash_over_short']:+,}" if row["cash_visit"] else "",
            str(t["discrepancies"]) if t["discrepancies"] else "",
        )  # fmt: skip
    console.print(rows)
    found = [d for row in report["rows"] for d in row["discrepancies"]]
    issues = Table(title=f"discrepancies: {len(found)}")
    for name in ("machine", "at", "category", "amount", "ref", "detail"):
        issues.add_column(name, justify="right" if name == "amount" else "left")
    for d in found:
        issues.add_row(
            d["machine"], d["at"][:19], d["category"], f"{d['amount']:+,}", d["ref"], d["detail"]
        )
    console.print(issues)
    total = report["rollups"]["total"][0]
    summary = Table(title="by category (net)", show_header=False)
    for category, amount in total["by_category"].items():
        summary.add_row(category, f"{amount:+,}")
    summary.add_row("[bold]net[/bold]", f"{total['totals']['discrepancy_net']:+,}")
    console.print(summary)


@app.command()
def lock(
    *,
    period: Annotated[str, typer.Option(help="The month to lock, YYYY-MM.")],
    by: Annotated[str, typer.Option(help="Who signs the period off.")],
    db: DbOption = DEFAULT_DB_URL,
    tz: TzOption = DEFAULT_TZ,
    currency: CurrencyOption = "VND",
    vat_bp: VatOption = 1000,
    receipts: ReceiptsOption = "queue",
) -> None:
    """Reconcile a month and lock it: later runs return the same bytes."""
    config = _config(tz, currency, vat_bp)
    source = _receipts("lock", receipts, config)
    with _store("lock", db) as engine:
        month = month_period(period, tz)
        done = lock_period(engine, month, config, by=by, now=_now(), receipts=source)
    assert sha256_hex(done.report) == done.sha256
    typer.echo(f"{done.period} locked by {done.locked_by}: sha256 {done.sha256}")


@app.command()
def adjust(
    *,
    period: Annotated[str, typer.Option(help="The locked month, YYYY-MM.")],
    category: Annotated[Category, typer.Option(help="What kind of difference it corrects.")],
    amount: Annotated[int, typer.Option(help="Signed amount in minor units (over = positive).")],
    by: Annotated[str, typer.Option(help="Who records it.")],
    why: Annotated[str, typer.Option(help="Why: kept with the adjustment.")],
    machine: Annotated[str | None, typer.Option(help="Machine concerned.")] = None,
    ref: Annotated[str | None, typer.Option(help="Discrepancy id or document it is about.")] = None,
    db: DbOption = DEFAULT_DB_URL,
    tz: TzOption = DEFAULT_TZ,
    currency: CurrencyOption = "VND",
) -> None:
    """Record a change to a locked month (who, when, why); the locked report stays as is."""
    with _store("adjust", db) as engine:
        label = month_period(period, tz).label
        record_adjustment(
            engine,
            Adjustment(
                period=label, category=category, amount=amount, recorded_by=by,
                recorded_at=_now(), why=why, machine=machine, ref=ref, currency=currency,
            ),
        )  # fmt: skip
    typer.echo(f"{label}: adjustment {category.value} {amount:+} recorded by {by}")


@app.command()
def site(
    *,
    machine: Annotated[str, typer.Option(help="Machine id.")],
    location: Annotated[str, typer.Option(help="Location name, for rollups.")],
    route: Annotated[str, typer.Option(help="Route name, for rollups.")],
    db: DbOption = DEFAULT_DB_URL,
) -> None:
    """Set a machine's location and route (the rollup keys)."""
    with _store("site", db) as engine:
        set_site(engine, machine, location, route)
    typer.echo(f"{machine}: {location} / {route}")


_STEPS = {
    "reconcile": "reconciling (or reading the locked report)",
    "csv": "writing CSV",
    "xlsx": "writing XLSX",
    "pdf": "writing PDF",
    "manifest": "signing the manifest",
}


@app.command()
def export(
    *,
    period: Annotated[str, typer.Option(help="The month to export, YYYY-MM.")],
    out: Annotated[Path, typer.Option(help="Folder to write (created; must hold nothing else).")],
    key: Annotated[Path, typer.Option(help="Private key file (`vend audit keygen`).")],
    fmt: Annotated[
        list[str] | None,
        typer.Option("--format", help="csv, xlsx, pdf or all; repeatable. CSV is always written."),
    ] = None,
    db: DbOption = DEFAULT_DB_URL,
    tz: TzOption = DEFAULT_TZ,
    currency: CurrencyOption = "VND",
    vat_bp: VatOption = 1000,
    receipts: ReceiptsOption = "queue",
) -> None:
    """Export a month for the auditor: CSV, XLSX, PDF and a signed manifest.

    A locked month is exported from its locked report (the same bytes every time)."""
    name = "export"
    config = _config(tz, currency, vat_bp)
    source = _receipts(name, receipts, config)
    try:
        formats = parse_formats(fmt or ["all"])
        signing = load_signing_key(key)
    except AuditError as exc:
        raise _fail(name, str(exc)) from None
    err = Console(stderr=True)
    with _store(name, db) as engine:
        month = month_period(period, tz)
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
            console=err, transient=True,
        ) as progress:  # fmt: skip
            task = progress.add_task("starting", total=None)

            def step(what: str) -> None:
                progress.update(task, description=_STEPS.get(what, what))

            result = export_period(
                engine, month, config, out, signing, formats=formats, progress=step,
                receipts=source,
            )  # fmt: skip
    state = "locked" if result.locked else "NOT locked (fresh reconciliation)"
    typer.echo(f"{month.label} ({state}): {len(result.files)} files in {result.folder}")
    typer.echo(
        f"manifest sha256 {result.manifest_sha256}, signed with {ALGORITHM} key {result.key_id}"
    )


def _trust(public_key: Path | None, key_id: str | None, hmac_key: Path | None) -> Trust:
    """The key the auditor trusts; a key id given with a public key file must be its id."""
    if hmac_key is not None:
        if public_key is not None or key_id is not None:
            raise AuditError("--hmac-key is for old-format exports only; give it on its own")
        return load_hmac_key(hmac_key)
    if public_key is not None:
        public = load_public_key(public_key)
        if key_id is not None and TrustedKeyId.parse(key_id).key_id != public.key_id:
            raise AuditError(f"public key {public_key} has key id {public.key_id}, not {key_id}")
        return public
    if key_id is not None:
        return TrustedKeyId.parse(key_id)
    raise AuditError("say which key to trust: --public-key FILE or --key-id ID")


@app.command()
def verify(
    folder: Annotated[Path, typer.Argument(help="An export folder.")],
    public_key: Annotated[
        Path | None,
        typer.Option(help="The signer's public key file (KEY.pub from `vend audit keygen`)."),
    ] = None,
    key_id: Annotated[
        str | None,
        typer.Option(
            help="The signer's key id as you received it; alone, the public key the manifest "
            "carries is used if it has this id."
        ),
    ] = None,
    hmac_key: Annotated[
        Path | None,
        typer.Option(help="Old-format exports only (HMAC-SHA256): the secret key file."),
    ] = None,
) -> None:
    """Check an export: the manifest signature, every file's SHA-256, and that the control
    totals equal what the CSV files add up to."""
    try:
        problems = verify_export(folder, _trust(public_key, key_id, hmac_key))
    except AuditError as exc:
        raise _fail("verify", str(exc)) from None
    if problems:
        for problem in problems:
            typer.echo(f"FAIL {problem}", err=True)
        raise _fail("verify", f"{folder}: {len(problems)} problem(s); do not rely on this export")
    typer.echo(f"{folder}: OK (signature, every file's SHA-256, control totals)")


@app.command()
def keygen(
    out: Annotated[Path, typer.Option(help="Where to write the private key (never overwritten).")],
    public_out: Annotated[
        Path | None, typer.Option(help="Where to write the public key (default: OUT.pub).")
    ] = None,
) -> None:
    """Create an Ed25519 key pair for signing exports: the private key (PEM PKCS#8,
    readable by you only) and the public key the auditor verifies with."""
    public_path = public_out or public_path_for(out)
    try:
        made = write_key_pair(out, public_path)
    except AuditError as exc:
        raise _fail("keygen", str(exc)) from None
    typer.echo(f"{out}: {ALGORITHM} private key {made.key_id}; keep it secret")
    typer.echo(f"{public_path}: its public key; give it (or the key id) to the auditor")


@app.command("key-id")
def key_id_command(
    file: Annotated[Path, typer.Argument(help="A private or public key file.")],
) -> None:
    """Print a key file's key id, to compare with the one on an export's PDF."""
    try:
        loaded = load_public_key(file) if _is_public(file) else load_signing_key(file).public
    except AuditError as exc:
        raise _fail("key-id", str(exc)) from None
    typer.echo(f"{ALGORITHM} {loaded.key_id}")


def _is_public(file: Path) -> bool:
    try:
        with file.open("rb") as handle:
            return b"PUBLIC KEY" in handle.read(4096)
    except OSError:
        return False
