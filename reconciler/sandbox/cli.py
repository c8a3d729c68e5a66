"""`saxctl sandbox ...` (being built)."""

import click


@click.group()
def sandbox() -> None:
    """Start, stop and point at the local emulators."""
