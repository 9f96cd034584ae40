"""Hypothesis strategies for valid telemetry bodies, envelopes and commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar

from hypothesis import strategies as st

from protocols.telemetry import (
    AckOutcome,
    AlarmBody,
    AlarmCode,
    AlarmState,
    BillCount,
    Body,
    CashBody,
    CashBoxCount,
    CashKind,
    CashTender,
    ChangePlanogram,
    ChangePrice,
    CoinCount,
    Command,
    CommandAckBody,
    DexReadBody,
    DexSelectionSummary,
    DexSummary,
    DexTotals,
    Effective,
    MachineServiceArgs,
    PaymentMethod,
    PlanogramChangeArgs,
    PlanogramEntry,
    PriceChangeArgs,
    Reboot,
    RebootArgs,
    RefundBody,
    RefundKind,
    RequestDex,
    RequestDexArgs,
    Resync,
    ResyncArgs,
    SaleBody,
    SaleLine,
    SelectionServiceArgs,
    SelectionStock,
    ServiceAction,
    ServiceActionEntry,
    ServiceVisitBody,
    SetMachineService,
    SetSelectionService,
    Severity,
    StatusBody,
    StockBody,
    StockKind,
    TelemetryEnvelope,
    TubeCount,
    make_envelope,
)

T = TypeVar("T")
machine_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
command_ids = st.uuids().map(str)
codes = st.from_regex(r"[A-Z][0-9]{1,2}", fullmatch=True)
# Any Unicode text the JSON layer can carry (no lone surrogates), Vietnamese included.
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=30) | st.sampled_from(
    ["Trà xanh Không Độ", "Bánh mì", "Nước suối Lavie 500ml", ""]
)
money = st.integers(min_value=0, max_value=10**12)
counts = st.integers(min_value=0, max_value=10_000)
currencies = st.sampled_from(["VND", "EUR", "USD", "JPY"])
moments = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
    max_value=datetime(2099, 12, 31),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-5))]),
)
whole_second_moments = moments.map(lambda moment: moment.replace(microsecond=0))


def _opt(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    return st.none() | strategy


statuses = st.builds(
    StatusBody,
    online=st.booleans(),
    firmware=texts,
    config_version=texts,
    started_at=moments,
    outbox_backlog=_opt(counts),
    devices=_opt(st.dictionaries(texts, texts, max_size=3)),
)
cash_tenders = st.builds(
    CashTender,
    coins=st.lists(
        st.builds(CoinCount, value=money, count=counts, to_tube=st.booleans()), max_size=3
    ),
    bills=st.lists(st.builds(BillCount, value=money, count=counts), max_size=3),
)
sales = st.builds(
    SaleBody,
    vend_id=st.integers(min_value=0, max_value=2**53),
    selection=codes,
    product=texts,
    price=money,
    currency=currencies,
    method=st.sampled_from(PaymentMethod),
    reader=_opt(st.integers(min_value=1, max_value=2)),
    payment_ref=_opt(texts),
    settled=st.booleans(),
    cash=_opt(cash_tenders),
    receipt_number=_opt(texts),
    lines=_opt(
        st.lists(
            st.builds(SaleLine, selection=codes, product=texts, quantity=counts, unit_price=money),
            max_size=3,
        )
    ),
)
refunds = st.builds(
    RefundBody,
    kind=st.sampled_from(RefundKind),
    amount=money,
    currency=currencies,
    vend_id=_opt(counts),
    payout_id=_opt(counts),
    reason=texts,
)
cash_moves = st.builds(
    CashBody,
    kind=st.sampled_from(CashKind),
    amount=money,
    currency=currencies,
    tubes=_opt(
        st.lists(
            st.builds(
                TubeCount,
                coin_type=st.integers(min_value=0, max_value=15),
                value=money,
                count=counts,
            ),
            max_size=4,
        )
    ),
    cash_box=_opt(
        st.builds(
            CashBoxCount,
            coins_value=money,
            bills_value=money,
            bills=st.lists(st.builds(BillCount, value=money, count=counts), max_size=3),
        )
    ),
    detail=texts,
)
stock_rows = st.builds(
    SelectionStock,
    code=codes,
    product=texts,
    count=counts,
    capacity=counts,
    par=counts,
    price=money,
    in_service=st.booleans(),
    reason=_opt(texts),
    delta=_opt(st.integers(min_value=-100, max_value=100)),
)
stocks = st.builds(
    StockBody,
    kind=st.sampled_from(StockKind),
    currency=currencies,
    selections=st.lists(stock_rows, max_size=5, unique_by=lambda row: row.code),
)
alarms = st.builds(
    AlarmBody,
    code=st.sampled_from(AlarmCode),
    state=st.sampled_from(AlarmState),
    severity=st.sampled_from(Severity),
    device=_opt(texts),
    detail=texts,
    selection=_opt(codes),
)


@st.composite
def service_visits(draw: st.DrawFn) -> ServiceVisitBody:
    opened = draw(moments)
    closed = draw(_opt(st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=5))))
    actions = draw(
        st.lists(
            st.builds(
                ServiceActionEntry,
                action=st.sampled_from(ServiceAction),
                selection=_opt(codes),
                count=_opt(st.integers(min_value=-50, max_value=50)),
                amount=_opt(money),
            ),
            max_size=4,
        )
    )
    return ServiceVisitBody(
        opened_at=opened,
        closed_at=None if closed is None else opened + closed,
        operator=draw(_opt(texts)),
        currency=draw(currencies),
        actions=actions,
    )


nullable_ints = _opt(st.integers(min_value=0, max_value=10**9))
dex_reads = st.builds(
    DexReadBody,
    raw=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200),
    summary=st.builds(
        DexSummary,
        machine_serial=_opt(texts),
        crc=st.sampled_from(["ok", "mismatch", "absent"]),
        totals=st.builds(
            DexTotals,
            paid_vends_value=nullable_ints,
            paid_vends_count=nullable_ints,
            cash_sales_value=nullable_ints,
            cashless_sales_value=nullable_ints,
        ),
        selections=st.lists(
            st.builds(
                DexSelectionSummary,
                selection=codes,
                price=nullable_ints,
                vends=nullable_ints,
                sales_value=nullable_ints,
            ),
            max_size=3,
        ),
        warnings=st.lists(texts, max_size=2),
        decimal_places=_opt(st.integers(min_value=0, max_value=3)),
        currency=_opt(currencies),
        segments=counts,
    ),
    reset=st.booleans(),
    read_at=moments,
)
acks = st.builds(
    CommandAckBody,
    command_id=command_ids,
    name=st.sampled_from(["price_change", "reboot", "resync"]),
    outcome=st.sampled_from(AckOutcome),
    detail=texts,
)
bodies: st.SearchStrategy[Body] = st.one_of(
    statuses, sales, refunds, cash_moves, stocks, alarms, service_visits(), dex_reads, acks
)


@st.composite
def envelopes(draw: st.DrawFn, body: st.SearchStrategy[Body] = bodies) -> TelemetryEnvelope:
    drawn = draw(body)
    seq_floor = 0 if isinstance(drawn, StatusBody) else 1
    return make_envelope(
        drawn,
        machine_id=draw(machine_ids),
        boot_id=draw(st.integers(min_value=0, max_value=2**31)),
        seq=draw(st.integers(min_value=seq_floor, max_value=2**53)),
        ts=draw(moments),
    )


arg_sets = st.one_of(
    st.tuples(
        st.just(ChangePrice),
        st.builds(PriceChangeArgs, selection=codes, price=money, currency=currencies),
    ),
    st.tuples(
        st.just(ChangePlanogram),
        st.builds(
            PlanogramChangeArgs,
            selections=st.lists(
                st.builds(
                    PlanogramEntry,
                    code=codes,
                    product=texts,
                    price=money,
                    capacity=st.integers(min_value=1, max_value=50),
                    par=counts,
                    motor=st.integers(min_value=0, max_value=99),
                ),
                min_size=1,
                max_size=3,
            ),
            currency=currencies,
            effective=st.sampled_from(Effective),
            config_version=texts.filter(bool),
        ),
    ),
    st.tuples(
        st.just(SetSelectionService),
        st.builds(SelectionServiceArgs, selection=codes, in_service=st.booleans(), reason=texts),
    ),
    st.tuples(
        st.just(SetMachineService),
        st.builds(MachineServiceArgs, in_service=st.booleans(), reason=texts),
    ),
    st.tuples(st.just(RequestDex), st.builds(RequestDexArgs, reset=st.booleans())),
    st.tuples(st.just(Resync), st.builds(ResyncArgs, after_seq=counts)),
    st.tuples(st.just(Reboot), st.just(RebootArgs())),
)


@st.composite
def commands(draw: st.DrawFn, machine_id: str | None = None) -> Command:
    cls: type[Command]
    cls, args = draw(arg_sets)
    issued = draw(whole_second_moments)
    lifetime = draw(st.integers(min_value=1, max_value=3 * 86400))
    return cls(
        id=draw(command_ids),
        machine_id=machine_id if machine_id is not None else draw(machine_ids),
        issued_at=issued,
        expires_at=issued + timedelta(seconds=lifetime),
        args=args,
    )
