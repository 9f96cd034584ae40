"""The lookup code a customer types to find a receipt, and the QR payload that carries it.

The code is an HMAC-SHA256, under the operator's secret, of the receipt's identity and
amount (seller tax code, symbol, number, total, currency), cut to 50 bits and written as
ten base32 letters. Only someone with the secret can mint a code that matches a receipt,
and the fleet can recompute it to check a receipt the machine produced offline.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import date
from typing import Protocol
from urllib.parse import urlencode

from protocols.einvoice.errors import EinvoiceError
from protocols.money import Money

LOOKUP_CODE_LENGTH = 10  # base32 letters: 50 bits
MIN_SECRET_BYTES = 16


def lookup_code(
    secret: bytes, *, seller_tax_code: str, symbol: str, number: int, total: Money
) -> str:
    """The ten-letter code for one receipt (deterministic for the same inputs)."""
    if len(secret) < MIN_SECRET_BYTES:
        raise EinvoiceError(
            "secret", f"the lookup secret must be at least {MIN_SECRET_BYTES} bytes"
        )
    message = "|".join((seller_tax_code, symbol, str(number), str(total.minor), total.currency))
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:LOOKUP_CODE_LENGTH]


def qr_payload(
    *,
    seller_tax_code: str,
    symbol: str,
    number: int,
    issued_on: date,
    total: Money,
    code: str,
    url: str | None = None,
) -> str:
    """What the receipt's QR code holds.

    With a lookup page ``url``: that URL with the receipt's identity as query
    parameters (``mst``, ``khmshdon``, ``khhdon``, ``shdon``, ``nlap``, ``tgtttbso``,
    ``mtcuu``), so a phone opens the check directly. Without: the same values joined
    by ``|`` in that order, for an app that knows where to look.
    """
    fields = {
        "mst": seller_tax_code,
        "khmshdon": symbol[:1],
        "khhdon": symbol[1:],
        "shdon": str(number),
        "nlap": issued_on.isoformat(),
        "tgtttbso": str(total.minor),
        "mtcuu": code,
    }
    if url:
        return f"{url}{'&' if '?' in url else '?'}{urlencode(fields)}"
    return "|".join(fields.values())


class _Identified(Protocol):
    """What :func:`verify_lookup_code` reads of a receipt."""

    @property
    def symbol(self) -> str: ...
    @property
    def number(self) -> int: ...
    @property
    def lookup_code(self) -> str: ...
    @property
    def total_money(self) -> Money: ...
    @property
    def seller_tax_code(self) -> str: ...


def verify_lookup_code(secret: bytes, doc: _Identified) -> bool:
    """Whether ``doc.lookup_code`` is the one ``secret`` gives for this receipt."""
    expected = lookup_code(
        secret,
        seller_tax_code=doc.seller_tax_code,
        symbol=doc.symbol,
        number=doc.number,
        total=doc.total_money,
    )
    return hmac.compare_digest(expected, doc.lookup_code)
