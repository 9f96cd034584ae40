"""protocols.einvoice.symbol: invoice symbols per Circular 78 (template digit + six characters)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.einvoice import EinvoiceError, InvoiceSymbol, cash_register_symbol


def test_cash_register_symbol_reads_its_parts() -> None:
    sym = InvoiceSymbol.parse("1C26MAB")
    assert (sym.template, sym.coded, sym.year, sym.kind, sym.letters) == (1, True, 26, "M", "AB")
    assert sym.series == "C26MAB"
    assert sym.is_cash_register
    assert sym.title == "Hóa đơn giá trị gia tăng"


def test_sales_invoice_without_code() -> None:
    sym = InvoiceSymbol.parse("2K25TYY")
    assert (sym.template, sym.coded, sym.kind, sym.title) == (2, False, "T", "Hóa đơn bán hàng")
    assert not sym.is_cash_register


@pytest.mark.parametrize(
    "text",
    ["", "1C26MA", "1C26MABC", "7C26MAB", "0C26MAB", "1X26MAB", "1C2MAB", "1C26XAB", "1c26mab",
     "1C26M1B", " 1C26MAB", "1C\uff126MAB", "1C26MÁB"],
)  # fmt: skip
def test_bad_symbols_are_refused_by_field(text: str) -> None:
    with pytest.raises(EinvoiceError) as err:
        InvoiceSymbol.parse(text)
    assert err.value.field == "symbol"


def test_cash_register_symbol_insists_on_c_and_m() -> None:
    assert str(cash_register_symbol("2C25MZZ")) == "2C25MZZ"
    for text in ("1K26MAB", "1C26TAB"):
        with pytest.raises(EinvoiceError, match="not a cash-register symbol") as err:
            cash_register_symbol(text, field="receipts.invoice_symbol")
        assert err.value.field == "receipts.invoice_symbol"


def test_year_follows_the_date_and_keeps_the_series() -> None:
    assert str(InvoiceSymbol.parse("1C26MAB").for_year(2027)) == "1C27MAB"
    assert str(InvoiceSymbol.parse("1C99MAB").for_year(2100)) == "1C00MAB"


def test_from_xml_parts() -> None:
    assert str(InvoiceSymbol.from_parts("1", "C26MAB")) == "1C26MAB"
    with pytest.raises(EinvoiceError):
        InvoiceSymbol.from_parts("1", "C26QAB")


@settings(max_examples=150)
@given(st.from_regex(r"[1-6][CK][0-9]{2}[TDLMNBGH][A-Z]{2}", fullmatch=True))
def test_every_valid_symbol_round_trips(text: str) -> None:
    sym = InvoiceSymbol.parse(text)
    assert str(sym) == text
    assert InvoiceSymbol.from_parts(str(sym.template), sym.series) == sym


@settings(max_examples=150)
@given(st.text(max_size=10))
def test_garbage_raises_only_our_error(text: str) -> None:
    try:
        sym = InvoiceSymbol.parse(text)
    except EinvoiceError:
        return
    assert str(sym) == text
