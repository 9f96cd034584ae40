"""The cabinet session state machine: every defined outcome, from events to actions."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from protocols.cabinet.errors import SessionError
from protocols.cabinet.model import (
    AlarmKind,
    CabinetPolicy,
    ChargeRule,
    LineKind,
    ReviewRecord,
    Settlement,
    SettlementOutcome,
    ShelfChange,
    ShelfReading,
)
from protocols.cabinet.session import (
    Action,
    AuthorisePayment,
    CabinetSession,
    CapturePayment,
    DoorClosed,
    DoorHeldOpen,
    DoorOpened,
    DoorRelocked,
    DoorUnlocked,
    InventoryRead,
    LockDoor,
    PaymentApproved,
    PaymentDenied,
    PowerLost,
    PowerRestored,
    QueueReview,
    RaiseAlarm,
    ReadInventory,
    ReadSessionReport,
    RecordSettlement,
    ReleasePayment,
    SensorFaulted,
    SessionReported,
    TimePassed,
    UnlockDoor,
    UnlockRefused,
)
from protocols.money import Money
from tests.protocols.cabinet.catalogue import PRODUCTS, make_tag, planogram, policy

BASELINE = tuple(ShelfReading(s, 5 * p.unit_weight_g) for s, p in enumerate(PRODUCTS[:3]))


def _weights(**removed_per_shelf: int) -> tuple[ShelfChange, ...]:
    """Weight-only changes: shelf index -> grams removed (negative: added)."""
    return tuple(
        ShelfChange(int(k[1:]), 5000, 5000 - grams) for k, grams in removed_per_shelf.items()
    )


def _open_session(
    pol: CabinetPolicy | None = None, tags: int = 0, baseline: Sequence[ShelfReading] = BASELINE
) -> CabinetSession:
    session = CabinetSession(77, planogram(tags_per_shelf=tags), pol or policy(), baseline=baseline)
    assert session.start(0.0) == [AuthorisePayment(session.policy.pre_auth)]
    assert session.handle(PaymentApproved(), 1.0) == [UnlockDoor(77, 30, 60)]
    assert session.handle(DoorUnlocked(), 1.1) == []
    assert session.handle(DoorOpened(), 3.0) == []
    assert session.handle(DoorClosed(), 20.0) == [ReadSessionReport(77)]
    return session


def _settled(actions: list[Action], session: CabinetSession) -> Settlement:
    assert session.finished
    assert isinstance(actions[-1], RecordSettlement)
    settlement = actions[-1].settlement
    assert settlement is session.settlement
    return settlement


def _kinds(settlement: Settlement) -> list[AlarmKind]:
    return [a.kind for a in settlement.alarms]


def test_two_taken_one_returned_charges_one_and_lists_it() -> None:
    session = _open_session()
    # Two colas left shelf 0 during the visit and one came back: the net is one.
    actions = session.handle(SessionReported(_weights(s0=355)), 21.0)
    settlement = _settled(actions, session)
    assert settlement.outcome is SettlementOutcome.CHARGED
    assert [(ln.sku, ln.quantity, ln.unit_price) for ln in settlement.lines] == [
        ("COLA", 1, Money(12_000))
    ]
    assert actions[0] == CapturePayment(Money(12_000), release=Money(188_000))
    assert settlement.alarms == ()


def test_item_returned_to_the_wrong_shelf_is_not_charged_and_raises_a_planogram_alarm() -> None:
    session = _open_session()
    # Two waters taken from shelf 1, one of them put down on the salad shelf 2.
    changes = (*_weights(s1=2 * 520), ShelfChange(2, 1300, 1300 + 518))
    settlement = _settled(session.handle(SessionReported(changes), 21.0), session)
    assert [(ln.sku, ln.quantity) for ln in settlement.lines] == [("WATER", 1)]
    [returned] = settlement.returned
    assert (returned.sku, returned.quantity, returned.to_shelf, returned.wrong_shelf) == (
        "WATER", 1, 2, True,
    )  # fmt: skip
    assert _kinds(settlement) == [AlarmKind.PLANOGRAM]
    assert settlement.reviews == ()


def test_rfid_items_are_exact_and_a_tag_moved_to_another_shelf_is_a_return() -> None:
    session = _open_session(tags=5)
    changes = (
        ShelfChange(0, None, None, frozenset({make_tag(0, 1), make_tag(0, 2)}), rfid=True),
        ShelfChange(1, None, None, added_tags=frozenset({make_tag(0, 2)}), rfid=True),
    )
    settlement = _settled(session.handle(SessionReported(changes), 21.0), session)
    assert [(ln.sku, ln.quantity) for ln in settlement.lines] == [("COLA", 1)]
    assert [(r.sku, r.to_shelf) for r in settlement.returned] == [("COLA", 1)]
    assert _kinds(settlement) == [AlarmKind.PLANOGRAM]


@pytest.mark.parametrize(
    ("rule", "outcome", "charged"),
    [
        (ChargeRule.CHARGE_CONFIDENT_ONLY, SettlementOutcome.CHARGED, 12_000),
        (ChargeRule.CHARGE_MAXIMUM_PLAUSIBLE, SettlementOutcome.CHARGED, 24_000),
        (ChargeRule.HOLD_FOR_REVIEW, SettlementOutcome.HELD_FOR_REVIEW, 0),
    ],
)
def test_weight_and_rfid_disagree_the_operator_rule_decides(
    rule: ChargeRule, outcome: SettlementOutcome, charged: int
) -> None:
    session = _open_session(policy(rule=rule), tags=5)
    # One tag left shelf 0, but the weight of two colas did.
    change = ShelfChange(0, 1775, 1775 - 710, frozenset({make_tag(0, 0)}), rfid=True)
    actions = session.handle(SessionReported((change,)), 21.0)
    settlement = _settled(actions, session)
    assert (settlement.outcome, settlement.charge) == (outcome, Money(charged))
    assert AlarmKind.SENSOR_DISAGREEMENT in _kinds(settlement)
    [review] = [a.record for a in actions if isinstance(a, QueueReview)]
    assert review.rule is rule
    assert [(ln.sku, ln.quantity) for ln in review.confident_lines] == [("COLA", 1)]
    assert [(ln.sku, ln.quantity) for ln in review.plausible_lines] == [("COLA", 2)]
    if charged == 0:
        assert isinstance(actions[-3], ReleasePayment)


@pytest.mark.parametrize(
    ("rule", "charged"),
    [
        (ChargeRule.CHARGE_CONFIDENT_ONLY, 0),
        (ChargeRule.CHARGE_MAXIMUM_PLAUSIBLE, 2 * 12_000),
    ],
)
def test_weight_of_no_whole_count_is_a_doubt(rule: ChargeRule, charged: int) -> None:
    session = _open_session(policy(rule=rule))
    settlement = _settled(session.handle(SessionReported(_weights(s0=530)), 21.0), session)
    assert settlement.charge == Money(charged)
    assert _kinds(settlement) == [AlarmKind.SENSOR_DISAGREEMENT]
    [review] = settlement.reviews
    assert review.shelves == (0,)


def test_door_left_open_raises_one_alarm_and_the_held_open_rule_applies() -> None:
    pol = CabinetPolicy(Money(200_000), held_open_rule=ChargeRule.HOLD_FOR_REVIEW)
    session = _open_session_until_open(pol)
    assert session.handle(TimePassed(), 62.9) == []
    [alarm] = session.handle(TimePassed(), 63.0)
    assert isinstance(alarm, RaiseAlarm)
    assert alarm.alarm.kind is AlarmKind.DOOR_HELD_OPEN
    assert session.handle(TimePassed(), 200.0) == []
    assert session.handle(DoorHeldOpen(), 201.0) == []  # the cabinet's own event, same alarm
    assert session.handle(DoorClosed(), 300.0) == [ReadSessionReport(77)]
    actions = session.handle(SessionReported(_weights(s0=355)), 301.0)
    settlement = _settled(actions, session)
    assert settlement.outcome is SettlementOutcome.HELD_FOR_REVIEW
    assert settlement.charge == Money(0)
    assert _kinds(settlement) == [AlarmKind.DOOR_HELD_OPEN]
    assert not [a for a in actions if isinstance(a, RaiseAlarm)]  # raised once, earlier
    [review] = settlement.reviews
    assert review.reasons == ("door held open",)
    assert [(ln.sku, ln.quantity) for ln in review.confident_lines] == [("COLA", 1)]


def test_door_left_open_with_the_default_rule_charges_what_was_measured() -> None:
    session = _open_session_until_open(policy())
    session.handle(TimePassed(), 100.0)
    session.handle(DoorClosed(), 300.0)
    settlement = _settled(session.handle(SessionReported(_weights(s0=355)), 301.0), session)
    assert settlement.charge == Money(12_000)
    assert settlement.reviews[0].rule is ChargeRule.CHARGE_CONFIDENT_ONLY


def _open_session_until_open(pol: CabinetPolicy) -> CabinetSession:
    session = CabinetSession(77, planogram(), pol, baseline=BASELINE)
    session.start(0.0)
    session.handle(PaymentApproved(), 1.0)
    session.handle(DoorUnlocked(), 2.0)
    session.handle(DoorOpened(), 3.0)
    return session


def test_power_lost_with_the_door_open_settles_from_the_inventories() -> None:
    session = _open_session_until_open(policy())
    [alarm] = session.handle(PowerLost(), 10.0)
    assert isinstance(alarm, RaiseAlarm)
    assert alarm.alarm.kind is AlarmKind.POWER_LOST
    assert session.handle(PowerRestored(door_open=True), 50.0) == []
    assert session.handle(DoorClosed(), 60.0) == [ReadInventory()]
    after = (
        ShelfReading(0, 5 * 355 - 2 * 355),
        ShelfReading(1, 5 * 520),
        ShelfReading(2, 5 * 180),
    )
    settlement = _settled(session.handle(InventoryRead(after), 61.0), session)
    assert [(ln.sku, ln.quantity) for ln in settlement.lines] == [("COLA", 2)]
    assert settlement.reviews[0].reasons == ("power lost during the session",)


def test_power_lost_can_be_held_for_review_and_needs_a_baseline() -> None:
    pol = CabinetPolicy(Money(200_000), power_loss_rule=ChargeRule.HOLD_FOR_REVIEW)
    session = _open_session_until_open(pol)
    session.handle(PowerLost(), 10.0)
    assert session.handle(PowerRestored(door_open=False), 11.0) == [ReadInventory()]
    settlement = _settled(session.handle(InventoryRead(BASELINE), 12.0), session)
    assert settlement.outcome is SettlementOutcome.HELD_FOR_REVIEW

    blind = CabinetSession(78, planogram(), policy())
    blind.start(0.0)
    blind.handle(PaymentApproved(), 1.0)
    blind.handle(DoorUnlocked(), 2.0)
    blind.handle(PowerLost(), 3.0)
    blind.handle(PowerRestored(), 4.0)
    held = _settled(blind.handle(InventoryRead(BASELINE), 5.0), blind)
    assert held.outcome is SettlementOutcome.HELD_FOR_REVIEW
    assert "no inventory from before the cut" in held.reviews[0].reasons


def test_charge_is_capped_at_the_pre_authorisation_with_an_alarm() -> None:
    session = _open_session(policy(pre_auth=100_000))
    settlement = _settled(session.handle(SessionReported(_weights(s2=3 * 180)), 21.0), session)
    assert settlement.charge == Money(100_000)
    assert [ln.kind for ln in settlement.lines] == [LineKind.ITEM, LineKind.CAP_ADJUSTMENT]
    assert settlement.lines[0].total == Money(105_000)
    assert sum(ln.total.minor for ln in settlement.lines) == 100_000
    assert _kinds(settlement) == [AlarmKind.OVER_PRE_AUTH]


def test_reader_approving_less_lowers_the_cap() -> None:
    session = CabinetSession(9, planogram(), policy())
    session.start(0.0)
    session.handle(PaymentApproved(Money(50_000)), 1.0)
    assert session.authorised == Money(50_000)


def test_nothing_taken_releases_the_hold() -> None:
    session = _open_session()
    actions = session.handle(SessionReported(_weights(s0=3, s1=-4)), 21.0)
    settlement = _settled(actions, session)
    assert settlement.outcome is SettlementOutcome.NOTHING_TAKEN
    assert actions[0] == ReleasePayment("nothing_taken")


def test_sensor_fault_on_a_weight_shelf_goes_to_review() -> None:
    session = _open_session_until_open(policy())
    [alarm] = session.handle(SensorFaulted(1), 5.0)
    assert isinstance(alarm, RaiseAlarm)
    session.handle(DoorClosed(), 10.0)
    settlement = _settled(session.handle(SessionReported(_weights(s0=355, s1=520)), 11.0), session)
    assert settlement.charge == Money(12_000)  # the faulted shelf is not charged
    review: ReviewRecord = settlement.reviews[0]
    assert review.shelves == (1,)


def test_payment_denied_ends_without_unlocking() -> None:
    session = CabinetSession(5, planogram(), policy())
    session.start(0.0)
    actions = session.handle(PaymentDenied(), 1.0)
    assert [type(a) for a in actions] == [RecordSettlement]
    assert session.settlement is not None
    assert session.settlement.outcome is SettlementOutcome.CANCELLED


def test_door_never_opened_locks_and_releases() -> None:
    session = CabinetSession(5, planogram(), policy(open_window_s=30))
    session.start(0.0)
    session.handle(PaymentApproved(), 1.0)
    session.handle(DoorUnlocked(), 2.0)
    assert session.handle(TimePassed(), 31.0) == []
    assert session.handle(TimePassed(), 32.0) == [LockDoor(5)]
    assert session.handle(TimePassed(), 33.0) == []
    actions = session.handle(DoorRelocked(), 33.5)
    assert actions[0] == ReleasePayment("the door was not opened in time")


def test_unlock_refused_releases() -> None:
    session = CabinetSession(5, planogram(), policy())
    session.start(0.0)
    session.handle(PaymentApproved(), 1.0)
    actions = session.handle(UnlockRefused("BUSY"), 1.5)
    assert actions[0] == ReleasePayment("cabinet did not unlock: BUSY")


@pytest.mark.parametrize(
    ("events", "problem"),
    [
        ([DoorOpened()], "DoorOpened while authorising"),
        ([PaymentApproved(), DoorClosed()], "DoorClosed while unlocking"),
        ([PaymentDenied(), TimePassed()], "finished"),
    ],
)
def test_events_out_of_turn_are_session_errors(events: list[object], problem: str) -> None:
    session = CabinetSession(5, planogram(), policy())
    session.start(0.0)
    *before, last = events
    for event in before:
        session.handle(event, 1.0)  # type: ignore[arg-type]
    with pytest.raises(SessionError, match=problem):
        session.handle(last, 1.0)  # type: ignore[arg-type]


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(SessionError, match="session id 0"):
        CabinetSession(0, planogram(), policy())
    with pytest.raises(SessionError, match="pre-authorisation in EUR"):
        CabinetSession(1, planogram(), CabinetPolicy(Money(100, "EUR")))
    with pytest.raises(SessionError, match="must be > 0"):
        CabinetPolicy(Money(0))
