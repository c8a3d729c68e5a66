"""Long-running operations: PENDING → RUNNING → DONE on a timer; the emulator's callback commits each one's effect.

Operations live in the emulator's ResourceStore (so a restarted emulator finishes what was running), and move on
wall-clock time: a background thread advances them when due, and every read advances them first, so what a client
sees never lags behind the schedule.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from reconciler.sandbox.base.store import ResourceStore

PENDING_SHARE = 0.1  # of an operation's latency spent PENDING before it is RUNNING
_IDLE_WAKE_S = 1.0

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Operation:
    key: str
    record: dict  # the API's own fields (operation type, target...), as the emulator started it
    status: str  # PENDING, RUNNING, DONE
    start_time: str  # RFC 3339
    end_time: str | None
    error: dict | None  # {"code": google.rpc.Code number, "message"} once DONE with a failure
    failure: dict | None  # the failure it was started to end with (an injected stockout, say)
    running_at: float
    done_at: float

    @property
    def done(self) -> bool:
        return self.status == "DONE"


class Operations:
    """Start, read and list operations under a key prefix of a store; `finish(operation)` runs when one is due.

    `finish` runs with the store's lock held, before the operation shows DONE (so a client that sees DONE sees the
    effect too); it sees `operation.failure` and commits the effect of a failure (a node pool in ERROR) itself.
    An exception in it ends the operation with an INTERNAL error.
    """

    def __init__(self, store: ResourceStore, prefix: str, finish: Callable[[Operation], None],
                 clock: Callable[[], float] = time.time):
        self._store = store
        self._prefix = prefix
        self._finish = finish
        self._clock = clock
        # The thread never waits for the store's lock while holding this one: request handlers start operations
        # with the store's lock held, then take this one to wake the thread (the other order deadlocks with them).
        self._wake = threading.Condition()
        self._started = False  # an operation started since the thread last worked out when the next one is due
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"operations{prefix}", daemon=True)
        self._thread.start()

    def start(self, key: str, record: dict, latency_s: float, failure: dict | None = None) -> Operation:
        now = self._clock()
        entry = {"record": record, "status": "PENDING", "start": now, "end": None, "error": None,
                 "failure": failure, "running_at": now + latency_s * PENDING_SHARE, "done_at": now + latency_s}
        with self._store.lock:
            self._store.create(self._prefix + key, entry)
        with self._wake:
            self._started = True
            self._wake.notify()
        return _operation(key, entry)

    def get(self, key: str) -> Operation | None:
        self.advance()
        stored = self._store.get(self._prefix + key)
        return _operation(key, stored.resource) if stored else None

    def list(self, key_prefix: str = "") -> list[Operation]:
        self.advance()
        return [_operation(key.removeprefix(self._prefix), stored.resource)
                for key, stored in self._store.list(self._prefix + key_prefix)]

    def finish_now(self, key: str) -> Operation | None:
        """End an operation not DONE yet now, whatever its latency said: a test holds one with a long latency and
        lets it finish once what it waits for has happened (a condition, not a clock). None when there is none."""
        with self._store.lock:
            stored = self._store.get(self._prefix + key)
            if stored is None:
                return None
            if stored.resource["status"] != "DONE":
                now = self._clock()
                self._store.put(self._prefix + key, {**stored.resource, "running_at": now, "done_at": now})
        return self.get(key)

    def active(self, predicate: Callable[[Operation], bool]) -> Operation | None:
        """The first operation not DONE for which predicate holds (GKE: one per cluster at a time)."""
        return next((op for op in self.list() if not op.done and predicate(op)), None)

    def advance(self) -> None:
        """Move every due operation on; finish those whose time has come."""
        with self._store.lock:
            now = self._clock()
            for key, stored in self._store.list(self._prefix):
                entry = stored.resource
                if entry["status"] == "DONE":
                    continue
                if now >= entry["done_at"]:
                    self._complete(key, entry, now)
                elif entry["status"] == "PENDING" and now >= entry["running_at"]:
                    self._store.put(key, {**entry, "status": "RUNNING"})

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=2)

    def _complete(self, key: str, entry: dict, now: float) -> None:
        operation = replace(_operation(key.removeprefix(self._prefix), entry), status="RUNNING")
        error = entry["failure"]
        try:
            self._finish(operation)
        except Exception as exception:  # a bug of the emulator: the operation says so rather than hang
            log.exception("finishing operation %s failed", key)
            error = {"code": 13, "message": f"the emulator failed to finish this operation: {exception}"}
        self._store.put(key, {**entry, "status": "DONE", "end": now, "error": error})

    def _next_due(self) -> float | None:
        due = [stored.resource["running_at"] if stored.resource["status"] == "PENDING" else stored.resource["done_at"]
               for _, stored in self._store.list(self._prefix) if stored.resource["status"] != "DONE"]
        return min(due, default=None)

    def _run(self) -> None:
        while True:
            due = self._next_due()  # the store's lock, not _wake: see __init__
            with self._wake:
                if self._closed:
                    return
                wait = _IDLE_WAKE_S if due is None else max(0.0, min(_IDLE_WAKE_S, due - self._clock()))
                if wait > 0 and not self._started:  # one started after `due` was worked out may be due sooner
                    self._wake.wait(wait)
                self._started = False
                if self._closed:
                    return
            try:
                self.advance()
            except Exception:
                log.exception("advancing operations failed")


def rfc3339(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


def _operation(key: str, entry: dict) -> Operation:
    return Operation(key=key, record=entry["record"], status=entry["status"], start_time=rfc3339(entry["start"]),
                     end_time=rfc3339(entry["end"]) if entry["end"] is not None else None, error=entry["error"],
                     failure=entry["failure"], running_at=entry["running_at"], done_at=entry["done_at"])
