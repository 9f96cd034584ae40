"""Alembic migrations of the fleet database (run with ``vend fleet migrate``)."""
