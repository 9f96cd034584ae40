"""MDB events in, vend-session inputs out: the one place that knows both vocabularies."""

from __future__ import annotations

from protocols.mdb import bill, changer
from protocols.mdb.cashless import events as cashless
from protocols.mdb.events import DeviceOffline, DeviceReset, MdbEvent
from protocols.vend import inputs as i


def to_input(event: MdbEvent, *, service_mode: bool) -> i.VendInput | None:
    """The session input an MDB event means, or None if it is not a money event.

    In service mode (door open) coins go into the tubes as a fill, not as credit.
    """
    match event:
        case changer.CoinAccepted(coin_type=t, value=v, to_tube=tube):
            if service_mode:
                return i.TubesFilled(value=v)
            return i.CoinInserted(coin_type=t, value=v, to_tube=tube)
        case changer.ReturnLeverPressed():
            return i.ReturnRequested(reason="return lever")
        case bill.BillEscrowed(bill_type=t, value=v):
            return i.BillEscrowed(bill_type=t, value=v)
        case bill.BillStacked(bill_type=t, value=v):
            return i.BillStacked(bill_type=t, value=v)
        case bill.BillReturned(bill_type=t, value=v):
            return i.BillReturned(bill_type=t, value=v)
        case bill.EscrowedBillRemoved(bill_type=t, value=v):
            return i.BillReturned(bill_type=t, value=v)
        case cashless.SessionBegan(address=a, funds=f):
            return i.CardSessionBegan(reader=a, funds=f)
        case cashless.VendApproved(address=a, amount=amount, negative=negative):
            return i.CardVendApproved(reader=a, amount=amount, negative=negative)
        case cashless.VendDenied(address=a):
            return i.CardVendDenied(reader=a)
        case cashless.SessionEnded(address=a):
            return i.CardSessionEnded(reader=a, reason="ended")
        case cashless.SessionAborted(address=a, reason=why):
            return i.CardSessionEnded(reader=a, reason=why)
        case DeviceOffline(address=a) | DeviceReset(address=a, unexpected=True) if a in (
            0x10,
            0x60,
        ):
            return i.CardSessionEnded(reader=a, reason="reader lost")
    return None
