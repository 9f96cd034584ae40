"""What the fleet hears about a cabinet session: alarms, review records, the sale.

Pure functions from :mod:`protocols.cabinet` values to telemetry bodies:

* every :class:`~protocols.cabinet.model.Alarm` -> ``alarm`` (device ``cabinet``; a door
  held open is ``door_open``, cleared when the door closes; the rest are ``other`` with
  the cabinet's alarm kind at the front of the detail). A ``planogram`` notice carries
  the shelf's code as its selection, so its clear (the stray gone,
  :func:`planogram_cleared_body`) closes it and no other cabinet alarm at the fleet,
  which pairs raise and clear by (code, device, selection);
* every :class:`~protocols.cabinet.model.ReviewRecord`, and every payment that did not
  end as settled (card lost at a restart, refund or new charge refused, a capture cut
  short) -> ``review`` for the fleet's human review queue;
* the settlement -> one ``sale`` whose ``lines`` list every item taken (one e-receipt),
  ``settled`` false when the card could not be charged.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.outbox import READER_NUMBERS
from protocols.cabinet.model import (
    Alarm,
    AlarmKind,
    LineKind,
    SaleLine,
    Settlement,
    ShelfChange,
    diff,
)
from protocols.cabinet.session import CabinetSession, InventoryRead, SessionReported
from protocols.cabinet.strays import Stray
from protocols.money import Money
from protocols.telemetry import (
    AlarmBody,
    AlarmCode,
    AlarmState,
    PaymentMethod,
    ReviewBody,
    SaleBody,
    Severity,
    ShelfEvidence,
)
from protocols.telemetry import SaleLine as WireLine

DEVICE = "cabinet"
_CRITICAL = frozenset({AlarmKind.TAMPER, AlarmKind.POWER_LOST})


def alarm_body(alarm: Alarm, selection: str | None = None) -> AlarmBody:
    if alarm.kind is AlarmKind.DOOR_HELD_OPEN:
        return AlarmBody(
            code=AlarmCode.DOOR_OPEN,
            state=AlarmState.RAISED,
            severity=Severity.WARNING,
            device=DEVICE,
            detail=f"session {alarm.session_id}: {alarm.detail}",
        )
    where = "" if alarm.shelf is None else f" (shelf {alarm.shelf})"
    return AlarmBody(
        code=AlarmCode.OTHER,
        state=AlarmState.RAISED,
        severity=Severity.CRITICAL if alarm.kind in _CRITICAL else Severity.WARNING,
        device=DEVICE,
        detail=f"cabinet {alarm.kind.value}: session {alarm.session_id}: {alarm.detail}{where}",
        selection=selection,
    )


def planogram_cleared_body(stray: Stray, selection: str | None) -> AlarmBody:
    """The end of a planogram notice: the item put on the wrong shelf is gone from it."""
    return AlarmBody(
        code=AlarmCode.OTHER,
        state=AlarmState.CLEARED,
        severity=Severity.INFO,
        device=DEVICE,
        detail=f"cabinet {AlarmKind.PLANOGRAM.value}: session {stray.session_id}: "
        f"{stray.sku} no longer on shelf {stray.shelf}",
        selection=selection,
    )


def door_closed_body(session_id: int) -> AlarmBody:
    return AlarmBody(
        code=AlarmCode.DOOR_OPEN,
        state=AlarmState.CLEARED,
        severity=Severity.INFO,
        device=DEVICE,
        detail=f"session {session_id}: door closed",
    )


def wire_lines(lines: Sequence[SaleLine]) -> list[WireLine]:
    """Item lines for telemetry; a cap adjustment (negative) is carried by the price."""
    return [
        WireLine(
            selection=ln.sku, product=ln.name, quantity=ln.quantity, unit_price=ln.unit_price.minor
        )
        for ln in lines
        if ln.kind is LineKind.ITEM
    ]


def capped(settlement: Settlement) -> bool:
    return any(ln.kind is LineKind.CAP_ADJUSTMENT for ln in settlement.lines)


def sale_body(settlement: Settlement, reader: int, *, settled: bool) -> SaleBody | None:
    """The sale for the items charged (``None`` when nothing is charged)."""
    lines = wire_lines(settlement.lines)
    if not lines:
        return None
    count = sum(ln.quantity for ln in lines)
    single = len(lines) == 1 and count == 1
    return SaleBody(
        vend_id=settlement.session_id,
        selection=lines[0].selection if len(lines) == 1 else DEVICE,
        product=lines[0].product if single else f"{count} items",
        price=settlement.charge.minor,
        currency=settlement.charge.currency,
        method=PaymentMethod.CASHLESS,
        reader=READER_NUMBERS.get(reader),
        settled=settled,
        lines=lines,
    )


def evidence(changes: Sequence[ShelfChange]) -> list[ShelfEvidence]:
    return [
        ShelfEvidence(
            shelf=c.shelf,
            weight_before_g=c.weight_before_g,
            weight_after_g=c.weight_after_g,
            removed_tags=sorted(c.removed_tags),
            added_tags=sorted(c.added_tags),
            confidence=c.confidence,
            fault=c.fault,
        )
        for c in changes
    ]


def review_bodies(
    session: CabinetSession,
    reader: int,
    changes: Sequence[ShelfChange],
) -> list[ReviewBody]:
    """The pure session's review records (a charge rule applied), as wire bodies."""
    settlement = session.settlement
    if settlement is None:
        return []
    out = []
    for record in settlement.reviews:
        due = sum(ln.total.minor for ln in record.plausible_lines)
        out.append(
            ReviewBody(
                session_id=record.session_id,
                reasons=list(record.reasons) or ["charge rule applied"],
                rule=record.rule.value,
                outcome=settlement.outcome.value,
                currency=settlement.authorised.currency,
                authorised=settlement.authorised.minor,
                charged=record.charged.minor,
                due=due,
                reader=READER_NUMBERS.get(reader),
                confident_lines=wire_lines(record.confident_lines),
                plausible_lines=wire_lines(record.plausible_lines),
                shelves=list(record.shelves),
                evidence=evidence(changes),
                alarms=[f"{a.kind.value}: {a.detail}" for a in settlement.alarms],
            )
        )
    return out


def payment_review(
    settlement: Settlement,
    reader: int,
    *,
    outcome: str,
    reason: str,
    charged: Money,
    changes: Sequence[ShelfChange] = (),
) -> ReviewBody:
    """A payment that did not end as the settlement said: a person must follow it up."""
    lines = wire_lines(settlement.lines)
    return ReviewBody(
        session_id=settlement.session_id,
        reasons=[reason],
        rule="payment",
        outcome=outcome,
        currency=settlement.authorised.currency,
        authorised=settlement.authorised.minor,
        charged=min(charged, settlement.authorised).minor,
        due=settlement.charge.minor,
        reader=READER_NUMBERS.get(reader),
        confident_lines=lines,
        plausible_lines=lines,
        evidence=evidence(changes),
        alarms=[f"{a.kind.value}: {a.detail}" for a in settlement.alarms],
    )


def last_changes(session: CabinetSession, events: Sequence[object]) -> tuple[ShelfChange, ...]:
    """The shelf changes the settlement was computed from (report or inventory diff)."""
    for event in reversed(events):
        if isinstance(event, SessionReported):
            return event.changes
        if isinstance(event, InventoryRead) and session.baseline is not None:
            after = {r.shelf: r for r in event.readings}
            return tuple(diff(b, after[b.shelf]) for b in session.baseline if b.shelf in after)
    return ()
