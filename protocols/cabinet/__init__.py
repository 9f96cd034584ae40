"""Our own serial protocol for smart cabinets, documented in docs/cabinet-protocol.md.

The framing and the client are shared with the dispensing board
(:mod:`protocols.framed`). On top of them: ``messages`` (frames <-> typed commands
and answers), ``codec`` (their byte layouts), ``client`` (one request in flight,
retries), ``procedures`` (multi-page reads and the session-id verdict as
sans-I/O procedures), ``model`` (planogram, readings, settlement values), ``settle``
(what a customer took, as pure arithmetic) and ``session`` (the whole cabinet sale
as a pure state machine the controller drives).
"""
