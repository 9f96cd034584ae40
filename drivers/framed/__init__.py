"""What the dispenser and cabinet drivers share: byte pipes, URLs and the transaction loop.

Both devices speak the framed protocols of :mod:`protocols.framed` over RS-485 or
RS-232. ``kind`` (how a driver names its device and fails), ``transport`` (serial
port or in-process simulator, chosen by URL) and ``driver`` (open/close and one
request at a time with retries, on the event loop's clock).
"""
