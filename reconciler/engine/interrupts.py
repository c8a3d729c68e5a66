"""Hold Ctrl-C and SIGTERM back during a few calls that must not be cut halfway (taking and releasing the lock)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Inside the block a signal is only noted; KeyboardInterrupt is raised when the block ends.

    A lock created on the server but not yet known to the client would otherwise outlive the run.
    Signal handlers belong to the main thread, so elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {number: signal.signal(number, lambda signum, frame: received.append(signum)) for number in _SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if received:
            raise KeyboardInterrupt


class Presses:
    """How many times Ctrl-C (or SIGTERM) was pressed since the block began."""

    def __init__(self) -> None:
        self.count = 0

    def press(self, signum, frame) -> None:
        self.count += 1


@contextmanager
def interrupts_counted() -> Iterator[Presses]:
    """Inside the block Ctrl-C and SIGTERM are counted instead of raised, so a loop can react at a safe point.

    Outside the main thread (where signals are not delivered) the count simply stays 0.
    """
    presses = Presses()
    if threading.current_thread() is not threading.main_thread():
        yield presses
        return
    previous = {number: signal.signal(number, presses.press) for number in _SIGNALS}
    try:
        yield presses
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
