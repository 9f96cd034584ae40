"""Hypothesis strategies for receipts: Vietnamese text, every VAT rate form, VND and EUR."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from protocols.einvoice import Buyer, OriginalRef, Payment, Relation, SaleItem, Seller
from protocols.money import Money

SECRET = b"test-lookup-secret-0123456789"
VIETNAMESE = (
    "aăâbcdđeêghiklmnoôơpqrstuưvxyáàảãạắằẳẵặấầẩẫậéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ"
)
_letters = VIETNAMESE + VIETNAMESE.upper() + "0123456789 .,-&()/'\"<>"
texts = st.text(alphabet=_letters, min_size=1, max_size=40).filter(lambda t: t.strip() != "")
rates = st.sampled_from(["0%", "5%", "8%", "10%", "KCT", "KKKNT", "7.7%", "2.5%"])
tax_codes = st.from_regex(r"[0-9]{10}(-[0-9]{3})?", fullmatch=True)
symbols = st.builds(
    lambda t, y, ab: f"{t}C{y:02d}M{ab}",
    st.integers(1, 2),
    st.integers(0, 99),
    st.from_regex(r"[A-Z]{2}", fullmatch=True),
)
offsets = st.sampled_from([timezone(timedelta(hours=7)), UTC, timezone(timedelta(hours=-5))])
times = st.builds(
    datetime.fromtimestamp,
    st.integers(1_600_000_000, 2_000_000_000),
    offsets,
)
sellers = st.builds(Seller, name=texts, tax_code=tax_codes, address=texts)
buyers = st.one_of(
    st.none(),
    st.builds(Buyer, name=texts, tax_code=st.none() | tax_codes, address=st.none() | texts),
)


@st.composite
def items(draw: st.DrawFn, currency: str, *, negative: bool = False) -> list[SaleItem]:
    qty = st.integers(-5, 5).filter(bool) if negative else st.integers(1, 20)
    return draw(
        st.lists(
            st.builds(
                SaleItem,
                product=texts,
                quantity=qty,
                unit_price=st.integers(0, 10_000_000).map(lambda m: Money(m, currency)),
                vat_rate=rates,
                code=st.none() | st.from_regex(r"[A-Z][0-9]{1,2}", fullmatch=True),
                unit=st.none() | st.sampled_from(["cái", "chai", "lon", "gói"]),
            ),
            min_size=1,
            max_size=6,
        )
    )


@st.composite
def receipt_args(draw: st.DrawFn) -> dict[str, object]:
    currency = draw(st.sampled_from(["VND", "EUR"]))
    symbol = draw(symbols)
    number = draw(st.integers(2, 99_999_999))
    original = draw(
        st.none()
        | st.builds(
            OriginalRef,
            relation=st.sampled_from(list(Relation)),
            symbol=st.just(symbol),
            number=st.integers(1, number - 1),
            issued_on=times.map(lambda t: t.date()),
            reason=st.none() | texts,
        )
    )
    adjusting = original is not None and original.relation is Relation.ADJUSTMENT
    return {
        "symbol": symbol,
        "number": number,
        "issued_at": draw(times),
        "seller": draw(sellers),
        "buyer": draw(buyers),
        "items": draw(items(currency, negative=adjusting)),
        "payment": draw(st.sampled_from(list(Payment))),
        "secret": SECRET,
        "original": original,
        "authority_code": draw(
            st.none() | st.from_regex(r"M1-[0-9]{2}-[A-Z0-9]{5}", fullmatch=True)
        ),
        "lookup_url": draw(st.none() | st.just("https://tracuu.example.vn/hd")),
    }
