"""Placeholder; replaced by its real command."""

from __future__ import annotations

import typer


def run() -> None:
    """Not built yet."""
    typer.echo("not built yet", err=True)
    raise typer.Exit(code=1)
