"""Quantities as people read them: one unit system (binary: KiB, MiB, GiB) everywhere saxctl prints sizes."""

from __future__ import annotations


def bytes_text(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"
