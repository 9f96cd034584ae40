"""Our own serial protocol for spiral/lift motor boards, documented in docs/dispenser-protocol.md.

The framing and the transaction rules are shared with the cabinet
(:mod:`protocols.framed`). Here: ``messages`` (frames <-> typed commands and
answers), ``client`` (the shared client bound to them), ``procedures`` (a whole
vend or a resolution as a sans-I/O procedure) and ``results`` (what an outcome
means for money and for the selection).
"""
