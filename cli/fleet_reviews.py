"""`vend fleet reviews | review show | review resolve`: the human review queue of
smart-cabinet sessions (sensor doubts, doors held open, power cuts, card payments that did
not go through). Thin: the queue lives in fleet.reviews; this module parses options and
renders Rich tables or JSON.

Resolving records the decision (who, when, why, the amount); collecting a charge or
giving money back is done through the payment processor, outside the machine.

Exit codes: see cli.fleet_common and docs/operator.md (4: no such review, 5: the review
cannot be resolved as asked -- already resolved, or more than the card authorised).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from cli.fleet_common import (
    EXIT_NOT_FOUND,
    EXIT_REFUSED,
    EXIT_USAGE,
    ConfigOpt,
    DbOpt,
    JsonOpt,
    errors,
    fail,
    local,
    money,
    open_engine,
    out,
    print_json,
    reading,
    settings_from,
)
from fleet import reviews

app = typer.Typer()  # nameless: its commands join `vend fleet`
review_app = typer.Typer(no_args_is_help=True, help="One cabinet session under review.")
app.add_typer(review_app, name="review")

ReviewArg = Annotated[int, typer.Argument(help="Review id (from `vend fleet reviews`).")]


@contextlib.contextmanager
def _review_errors() -> Iterator[None]:
    try:
        yield
    except reviews.ReviewNotFoundError as exc:
        raise fail(str(exc), EXIT_NOT_FOUND) from None
    except reviews.ReviewError as exc:
        raise fail(str(exc), EXIT_REFUSED) from None


def _lines(lines: list[dict[str, object]]) -> str:
    return ", ".join(f"{ln.get('quantity')} x {ln.get('selection')}" for ln in lines) or "-"


@app.command(
    "reviews",
    epilog="Examples:\n\n  vend fleet reviews --open\n\n  vend fleet reviews --json",
)
def list_reviews(
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    open_only: Annotated[bool, typer.Option("--open", help="Only reviews not resolved.")] = False,
    machine: Annotated[
        str | None, typer.Option("--machine", help="Only this machine.", show_default=False)
    ] = None,
) -> None:
    """Cabinet sessions held for a person: why, what was charged, what may be due."""
    settings = settings_from(config, db=db)
    with reading(settings) as conn:
        found = reviews.list_reviews(conn, open_only=open_only, machine_id=machine)
    if as_json:
        print_json([r.as_dict() for r in found])
        return
    title = "Open reviews" if open_only else "Reviews"
    table = Table(title=f"{title} ({len(found)})")
    for name in ("id", "when", "machine", "session", "rule", "outcome", "authorised",
                 "charged", "due", "state", "why"):  # fmt: skip
        table.add_column(name)
    for r in found:
        state = r.state if r.resolution is None else f"{r.resolution} by {r.resolved_by}"
        table.add_row(
            str(r.id),
            local(r.ts, settings.zone),
            r.machine_id,
            str(r.session_id),
            r.rule,
            r.outcome,
            money(r.authorised, r.currency),
            money(r.charged, r.currency),
            money(r.due, r.currency),
            state,
            "; ".join(r.reasons),
        )
    out.print(table)


@review_app.command("show", epilog="Example:\n\n  vend fleet review show 12")
def show(
    review_id: ReviewArg, config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False
) -> None:
    """One review with the sensor evidence of every shelf."""
    settings = settings_from(config, db=db)
    with reading(settings) as conn, _review_errors():
        r = reviews.review(conn, review_id)
    if as_json:
        print_json(r.as_dict())
        return
    head = Table(title=f"Review {r.id}", show_header=False)
    head.add_column(style="bold")
    head.add_column()
    detail = r.detail
    for label, value in (
        ("machine / session", f"{r.machine_id} / {r.session_id}"),
        ("when", local(r.ts, settings.zone)),
        ("rule / outcome", f"{r.rule} / {r.outcome}"),
        ("reasons", "; ".join(r.reasons)),
        ("authorised / charged / due",
         " / ".join(money(v, r.currency) for v in (r.authorised, r.charged, r.due))),
        ("confident", _lines(detail.get("confident_lines", []))),
        ("maximum plausible", _lines(detail.get("plausible_lines", []))),
        ("alarms", "; ".join(detail.get("alarms", [])) or "-"),
        ("state", r.state if r.resolution is None else
         f"{r.resolution} {money(r.resolved_amount, r.currency)} by {r.resolved_by} at "
         f"{local(r.resolved_at, settings.zone)}: {r.resolved_why}"),
    ):  # fmt: skip
        head.add_row(label, value)
    out.print(head)
    shelves = Table(title="Sensor evidence")
    for name in ("shelf", "before g", "after g", "removed tags", "added tags", "conf.", "fault"):
        shelves.add_column(name)
    for e in detail.get("evidence", []):
        shelves.add_row(
            str(e.get("shelf")),
            str(e.get("weight_before_g")),
            str(e.get("weight_after_g")),
            str(len(e.get("removed_tags", []))),
            str(len(e.get("added_tags", []))),
            str(e.get("confidence")),
            "yes" if e.get("fault") else "",
        )
    out.print(shelves)


@review_app.command(
    "resolve",
    epilog="Examples:\n\n  vend fleet review resolve 12 --charge 15000 --by lan "
    "--why 'video: one can'\n\n  vend fleet review resolve 13 --release --by lan "
    "--why 'nothing taken'",
)
def resolve(  # noqa: PLR0917 - Typer maps each option to a parameter
    review_id: ReviewArg,
    by: Annotated[str, typer.Option("--by", help="Who decides.", show_default=False)],
    why: Annotated[str, typer.Option("--why", help="Why, in words.", show_default=False)],
    charge: Annotated[
        int | None,
        typer.Option("--charge", help="Amount owed in all, minor units.", show_default=False),
    ] = None,
    release: Annotated[bool, typer.Option("--release", help="Nothing more is owed.")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide a review: the amount the customer owes (--charge) or nothing (--release)."""
    if (charge is None) == (not release):
        raise fail("give exactly one of --charge AMOUNT or --release", EXIT_USAGE)
    settings = settings_from(config, db=db)
    with open_engine(settings) as engine, errors(), _review_errors(), engine.begin() as conn:
        r = reviews.resolve(
            conn, review_id, charge=None if release else charge, by=by, why=why,
            now=datetime.now(UTC),
        )  # fmt: skip
    if as_json:
        print_json(r.as_dict())
        return
    what = "released" if r.resolved_amount is None else money(r.resolved_amount, r.currency)
    out.print(f"review {r.id} ({r.machine_id} session {r.session_id}): {what} by {r.resolved_by}")
