"""Quantities as people read them: one unit system (binary: KiB, MiB, GiB) everywhere saxctl prints sizes; dollars."""

from __future__ import annotations


def bytes_text(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


def usd_text(amount: float, *, signed: bool = False) -> str:
    """$1,234.56; signed: +$1,234.56, −$1,234.56 or ±$0.00 (a change in cost)."""
    sign = ("+" if amount > 0 else "−" if amount < 0 else "±") if signed else ""
    return f"{sign}${abs(amount):,.2f}"
