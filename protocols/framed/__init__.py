"""What the dispensing-board and cabinet protocols share: frames, message base, client.

Both protocols speak the same framing (docs/dispenser-protocol.md §3,
docs/cabinet-protocol.md §2) with their own CODE tables. ``frames`` (bytes <->
frames), ``message`` (the message base and the ERROR answer's shape), ``fields``
(range checks and big-endian payload helpers), ``codec`` (one protocol's tables as
the generic code needs them) and ``client`` (one request in flight, retries),
generic over each protocol's messages and error types.
"""
