"""A counter that callers wait on until it reaches a threshold (saxml common/waitable.go): a model's loaded replicas,
which WaitForReady waits for."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Closed(Exception):
    """The model was unpublished while someone waited for it."""


class Waitable:
    def __init__(self) -> None:
        self._count = 0
        self._closed = False
        self._changed = threading.Condition()

    def add(self, delta: int) -> None:
        with self._changed:
            self._count += delta
            self._changed.notify_all()

    def value(self) -> int:
        with self._changed:
            return self._count

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait(self, threshold: int, still_wanted: Callable[[], bool]) -> bool:
        """True once the count reaches threshold; False when the caller stops wanting it (its deadline passed, it
        went away); Closed when the model is unpublished."""
        with self._changed:
            while self._count < threshold:
                if self._closed:
                    raise Closed()
                if not still_wanted():
                    return False
                self._changed.wait(timeout=0.5)  # also re-checks still_wanted, which nothing notifies
            return True
