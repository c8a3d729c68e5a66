"""Addresses: `kind.name`, one string everywhere (plans, logs, --target, JSON) whose kind and name stay parseable.

A name may itself contain `.`, `/` or `:` (IAM roles, Kubernetes namespaced names), so an address is split by the
kinds the providers serve, never by the first or last dot.
"""

from __future__ import annotations

from typing import Iterable


class Address(str):
    """An address that is also the plain string it prints as (dict keys and JSON need no conversion)."""

    __slots__ = ("kind", "name")
    kind: str
    name: str

    def __new__(cls, kind: str, name: str) -> Address:
        if not kind or not name:
            raise ValueError(f"an address needs a kind and a name, got {kind!r} and {name!r}")
        address = super().__new__(cls, f"{kind}.{name}")
        address.kind = kind
        address.name = name
        return address

    def __getnewargs__(self) -> tuple[str, str]:
        return self.kind, self.name

    def __repr__(self) -> str:
        return f"Address({self.kind!r}, {self.name!r})"


def parse_address(text: str, kinds: Iterable[str]) -> Address | None:
    """The address `text` names, given the kinds that exist; None when no kind is a prefix of it.

    The longest matching kind wins, so a kind may be a prefix of another (`gke.node_pool` vs `gke.node`).
    """
    best = ""
    for kind in kinds:
        if text.startswith(kind + ".") and len(text) > len(kind) + 1 and len(kind) > len(best):
            best = kind
    return Address(best, text[len(best) + 1:]) if best else None


def as_address(text: str, kinds: Iterable[str]) -> Address:
    """Like parse_address, for strings known to be addresses (read back from a saved plan)."""
    address = parse_address(text, kinds)
    if address is None:
        raise ValueError(f"{text!r} is not an address of any known kind")
    return address
