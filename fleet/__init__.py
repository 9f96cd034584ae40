"""The fleet service: ingest, store, stock, forecast, scheduling, routing, receipts, audit."""
