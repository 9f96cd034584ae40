"""Our own serial protocol for spiral/lift motor boards, documented in docs/dispenser-protocol.md.

``frames`` (bytes <-> frames), ``messages`` (frames <-> typed commands and answers),
``client`` (one request in flight, retries), ``procedures`` (a whole vend or a
resolution as a sans-I/O procedure) and ``results`` (what an outcome means for money
and for the selection).
"""
