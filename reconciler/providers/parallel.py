"""Observe resources one read each, in parallel: a provider's observe() when its API has no batch read."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Mapping, Sequence, TypeVar

from reconciler.engine.resource import Observed, Resource

MAX_READS_AT_ONCE = 8
Item = TypeVar("Item")
Result = TypeVar("Result")


def observe_each(desired: Sequence[Resource], read: Callable[[Resource], Observed | None],
                 thread_name: str) -> Mapping[str, Observed | None]:
    return dict(zip((r.address for r in desired), run_each(desired, read, thread_name)))


def run_each(items: Sequence[Item], work: Callable[[Item], Result], thread_name: str) -> list[Result]:
    """work(item) for each item, at most MAX_READS_AT_ONCE at a time; results in the items' order."""
    if not items:
        return []
    if len(items) == 1:
        return [work(items[0])]
    with ThreadPoolExecutor(max_workers=min(MAX_READS_AT_ONCE, len(items)), thread_name_prefix=thread_name) as pool:
        return list(pool.map(work, items))
