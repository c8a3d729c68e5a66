"""The addresses of Sax's resources."""

from __future__ import annotations

from reconciler.engine.address import Address

MODEL = "sax.model"


def model(name: str) -> Address:
    return Address(MODEL, name)
