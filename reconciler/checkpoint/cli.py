"""`saxctl checkpoint ...` (being built)."""

import click


@click.group()
def checkpoint() -> None:
    """Convert and upload model checkpoints."""
