"""Observe resources one read each, in parallel: a provider's observe() when its API has no batch read."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Mapping, Sequence

from reconciler.engine.resource import Observed, Resource

MAX_READS_AT_ONCE = 8


def observe_each(desired: Sequence[Resource], read: Callable[[Resource], Observed | None],
                 thread_name: str) -> Mapping[str, Observed | None]:
    if not desired:
        return {}
    with ThreadPoolExecutor(max_workers=min(MAX_READS_AT_ONCE, len(desired)), thread_name_prefix=thread_name) as pool:
        return dict(zip((r.address for r in desired), pool.map(read, desired)))
