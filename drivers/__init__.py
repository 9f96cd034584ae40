"""The only layer that touches serial ports: MDB links, the dispenser board, simulators."""
