"""A provider over an in-memory world, to drive the engine without any API (the engine's own contract)."""

from __future__ import annotations

import threading
import time

from reconciler.engine.diffing import field_changes
from reconciler.engine.resource import Action, Change, Observed, Resource
from reconciler.errors import RemoteError, RetryableError


class MemoryProvider:
    """Serves kind "mem.thing": objects are dicts in self.world, fingerprinted by a version counter."""

    kinds = frozenset({"mem.thing"})

    def __init__(self):
        self.world: dict[str, dict] = {}  # name -> {"fields": {...}, "owner": str | None, "version": int}
        self.calls: list[tuple[str, str]] = []
        self.fail: dict[str, list[Exception]] = {}  # address -> errors to raise on the next applies
        self.fail_reads: list[Exception] = []  # errors to raise on the next observes
        self.delay = 0.0
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()

    def observe(self, desired):
        self.calls.append(("observe", ",".join(r.address for r in desired)))
        if self.fail_reads:
            raise self.fail_reads.pop(0)
        return {r.address: self._observed(r) for r in desired}

    def _observed(self, resource: Resource):
        live = self.world.get(resource.name)
        if live is None:
            return None
        return Observed(resource.address, f"mem://{resource.name}", dict(live["fields"]),
                        f"version {live['version']}", live["owner"])

    def diff(self, desired, observed):
        if observed is None:
            return Change(desired.address, desired.kind, Action.CREATE, "missing", desired=desired)
        changes = field_changes(desired.fields, observed.fields, desired.replace_on)
        if not changes:
            return Change(desired.address, desired.kind, Action.NOOP, "up to date", desired=desired, observed=observed)
        action = Action.REPLACE if any(c.forces_replacement for c in changes) else Action.UPDATE
        return Change(desired.address, desired.kind, action, "differs", changes, desired, observed)

    def apply(self, change, progress):
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.calls.append((change.action.value, change.address))
        try:
            time.sleep(self.delay)
            progress.update("working")
            errors = self.fail.get(change.address)
            if errors:
                raise errors.pop(0)
            resource = change.desired
            if change.action is Action.DELETE:
                self.world.pop(resource.name, None)
                return None
            version = self.world.get(resource.name, {}).get("version", 0) + 1
            self.world[resource.name] = {"fields": dict(resource.fields), "owner": resource.params.get("owner", "demo"),
                                         "version": version}
            return self._observed(resource)
        finally:
            with self._lock:
                self.running -= 1


def thing(name: str, depends_on=(), **fields) -> Resource:
    return Resource(address=f"mem.thing.{name}", kind="mem.thing", name=name, fields=fields or {"size": 1},
                    depends_on=tuple(f"mem.thing.{d}" for d in depends_on), replace_on=frozenset({"zone"}),
                    params={"owner": "demo"})


class RecordingReporter:
    def __init__(self):
        self.events: list[tuple[str, str]] = []

    def started(self, change): self.events.append(("started", change.address))
    def message(self, change, text): self.events.append(("message", change.address))
    def advanced(self, change, done, total, unit): self.events.append(("advanced", change.address))
    def retrying(self, change, attempt, error, delay): self.events.append(("retrying", change.address))
    def finished(self, change, seconds): self.events.append(("finished", change.address))
    def failed(self, change, error, seconds): self.events.append(("failed", change.address))
    def skipped(self, change, reason): self.events.append(("skipped", change.address))


TRANSIENT = RetryableError("mem.things.insert mem://x: 503 backend unavailable")
PERMANENT = RemoteError("mem.things.insert mem://x: 403 forbidden")
