"""`vend restock`: master data in and out, the day's restocking plan, VRPTW benchmarks.

Exit codes: 0 ok, 1 error (bad input or data, database unusable or not migrated),
2 usage, 3 plan made but not feasible (a must-visit left out or a route breaks a
constraint; the plan is still printed) or a VRPTW instance left customers unserved.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from cli.restock_view import render_plan, render_solomon
from fleet.locations import machine_locations
from fleet.planning.masterdata import (
    MasterDataError,
    export_master_data,
    import_master_data,
    to_toml,
    write_csvs,
)
from fleet.planning.model import PlanningError
from fleet.planning.plan import PlanSettings, plan_day
from fleet.planning.plan_report import plan_document
from fleet.planning.plan_report import write_csvs as write_plan_csvs
from fleet.planning.routing import ProgressCallback, SolveProgress
from fleet.planning.solomon import Objective, read_solomon, solve_solomon
from fleet.planning.source import load_snapshot
from fleet.store.db import DEFAULT_DB_URL, StoreError, make_engine
from fleet.store.schema import require_migrated

EXIT_ERROR = 1
EXIT_INFEASIBLE = 3

app = typer.Typer(
    no_args_is_help=True,
    help="Restocking: master data, the day's visits, routes, pick lists and load sheets.",
)

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="VEND_DB",
        help="Database URL: sqlite:///path (default ./fleet.sqlite) or postgresql+psycopg://...",
    ),
]


def _fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    typer.echo(f"vend restock: {message}", err=True)
    return typer.Exit(code=code)


@contextmanager
def _store(db: str) -> Iterator[Engine]:
    """A migrated database, or a clear error."""
    try:
        engine = make_engine(db)
    except StoreError as exc:
        raise _fail(str(exc)) from None
    try:
        require_migrated(engine)
        yield engine
    except StoreError as exc:
        raise _fail(str(exc)) from None
    finally:
        engine.dispose()


@app.command("import")
def import_(
    files: Annotated[
        list[Path],
        typer.Argument(help="TOML or CSV files (or folders of them): see docs/restocking.md."),
    ],
    db: DbOption = DEFAULT_DB_URL,
) -> None:
    """Check master-data files and write them in one transaction (all or nothing)."""
    with _store(db) as engine:
        try:
            counts = import_master_data(engine, files)
        except MasterDataError as exc:
            for problem in exc.problems:
                typer.echo(problem, err=True)
            raise _fail(f"nothing imported: {len(exc.problems)} problem(s)") from None
    typer.echo("imported " + ", ".join(f"{n} {name}" for name, n in counts.items()))


@app.command("export")
def export(
    target: Annotated[
        Path, typer.Argument(help="A .toml file, or a folder for one CSV per entity.")
    ],
    db: DbOption = DEFAULT_DB_URL,
) -> None:
    """Write the master data back out, in the format `vend restock import` reads."""
    with _store(db) as engine:
        dump = export_master_data(engine)
    try:
        if target.suffix.lower() == ".toml":
            target.write_text(to_toml(dump), encoding="utf-8")
        else:
            write_csvs(dump, target)
    except OSError as exc:
        raise _fail(f"cannot write {target}: {exc}") from None
    typer.echo(f"exported {sum(len(rows) for rows in dump.values())} rows to {target}")


def _ids(text: str | None) -> frozenset[str]:
    return frozenset(p.strip() for p in (text or "").split(",") if p.strip())


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _fail(f"bad --date {text!r}: expected YYYY-MM-DD") from None


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _fail(f"unknown time zone {name!r} (e.g. Asia/Ho_Chi_Minh, Europe/Berlin)") from None


def _now(text: str | None, tz: tzinfo) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(f"bad --now {text!r}: expected an ISO date and time") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=tz)


@contextmanager
def _progress(show: bool) -> Iterator[ProgressCallback | None]:
    if not show:
        yield None
        return
    bar = Progress(
        TextColumn("[bold]routing[/bold] {task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("starting", total=1.0)

    def report(p: SolveProgress) -> None:
        bar.update(
            task,
            completed=p.elapsed_s,
            total=p.limit_s,
            description=f"{p.iterations} iterations, best cost {p.best_cost:,}",
        )

    with bar:
        yield report


@app.command()
def plan(
    *,
    day: Annotated[str, typer.Option("--date", help="The day to plan, YYYY-MM-DD (local).")],
    db: DbOption = DEFAULT_DB_URL,
    vans: Annotated[
        int | None, typer.Option("--vans", help="Use only the first N vans of the depot.")
    ] = None,
    must_visit: Annotated[
        str | None,
        typer.Option("--must-visit", help="Machine ids to visit anyway, comma-separated."),
    ] = None,
    skip: Annotated[
        str | None, typer.Option("--skip", help="Machine ids not to visit, comma-separated.")
    ] = None,
    time_limit: Annotated[
        float, typer.Option("--time-limit", min=0.1, help="Seconds the route solver may use.")
    ] = 10.0,
    depot: Annotated[
        str | None, typer.Option("--depot", help="Depot to plan from (needed if several).")
    ] = None,
    route: Annotated[
        str | None,
        typer.Option("--route", help="Only machines on these route ids, comma-separated."),
    ] = None,
    now_text: Annotated[
        str | None,
        typer.Option(
            "--now", help="Plan as of this time (ISO; default: now). Later data is ignored."
        ),
    ] = None,
    tz_name: Annotated[
        str, typer.Option("--tz", help="Time zone of the planned day and the printed times.")
    ] = "Asia/Ho_Chi_Minh",
    history_days: Annotated[
        int, typer.Option("--history-days", min=1, help="Days of sales the forecast reads.")
    ] = 56,
    seed: Annotated[int, typer.Option(help="Solver seed (same data + seed: same plan).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    csv_dir: Annotated[
        Path | None,
        typer.Option("--csv", help="Also write visits, routes, picklists, van_totals CSVs here."),
    ] = None,
) -> None:
    """Plan one day: which machines, why, in which order, and what to load."""
    planned = _day(day)
    tz = _zone(tz_name)
    now = _now(now_text, tz)
    must, skipped = _ids(must_visit), _ids(skip)
    if vans is not None and vans < 1:
        raise _fail("--vans must be at least 1")
    with _store(db) as engine:
        try:
            snap = load_snapshot(
                engine,
                now,
                depot_id=depot,
                max_vans=vans,
                routes=_ids(route),
                history_days=history_days,
            )
        except PlanningError as exc:
            raise _fail(str(exc)) from None
        with engine.connect() as conn:
            placed = machine_locations(conn)  # groups the pick lists per store
    unknown = sorted((must | skipped) - snap.machine_ids)
    if unknown:
        raise _fail(f"unknown machine(s) {', '.join(unknown)}: no site with a planogram")
    settings = PlanSettings(
        tz=tz,
        history_days=history_days,
        overrides=snap.overrides,
        must_visit=must,
        skip=skipped,
        time_limit_s=time_limit,
        seed=seed,
    )
    try:
        with _progress(not as_json) as progress:
            result = plan_day(planned, snap.fleet, now, settings, progress=progress)
    except PlanningError as exc:
        raise _fail(str(exc)) from None
    document = plan_document(
        result,
        depot_id=snap.fleet.depot.depot_id,
        timezone=tz_name,
        routes=snap.routes,
        notes=snap.notes,
        locations=placed,
    )
    if csv_dir is not None:
        try:
            write_plan_csvs(document, csv_dir)
        except OSError as exc:
            raise _fail(f"cannot write CSV files to {csv_dir}: {exc}") from None
    if as_json:
        typer.echo(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        render_plan(Console(), document)
    if not result.feasible:
        raise typer.Exit(code=EXIT_INFEASIBLE)


@app.command("solve-vrptw")
def solve_vrptw(
    file: Annotated[Path, typer.Argument(help="A Solomon-format VRPTW instance.")],
    time_limit: Annotated[
        float, typer.Option("--time-limit", min=0.1, help="Seconds the solver may use.")
    ] = 10.0,
    objective: Annotated[
        Objective,
        typer.Option(help="vehicles: fewest vehicles, then distance; distance: distance only."),
    ] = Objective.VEHICLES_THEN_DISTANCE,
    seed: Annotated[int, typer.Option(help="Solver seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Solve a VRPTW instance in the classic Solomon text format."""
    try:
        instance = read_solomon(file)
        with _progress(not as_json) as progress:
            solution = solve_solomon(
                instance, time_limit, objective=objective, seed=seed, progress=progress
            )
    except PlanningError as exc:
        raise _fail(str(exc)) from None
    document: dict[str, Any] = {
        "routes": [list(r) for r in solution.routes],
        "vehicles": solution.vehicles,
        "distance": round(solution.distance, 6),
    }
    if as_json:
        typer.echo(json.dumps(document))
    else:
        render_solomon(Console(), instance.name, document)
    if not solution.feasible:
        for problem in solution.breaks:
            typer.echo(f"vend restock: {problem}", err=True)
        if solution.unserved:
            shown = ", ".join(map(str, solution.unserved[:20]))
            typer.echo(f"vend restock: {len(solution.unserved)} unserved: {shown}", err=True)
        raise typer.Exit(code=EXIT_INFEASIBLE)
