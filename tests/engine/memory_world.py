"""A provider over an in-memory world, to drive the engine without any API (the engine's own contract)."""

from __future__ import annotations

import threading

from reconciler.engine.address import Address
from reconciler.engine.diffing import resource_changes
from reconciler.engine.provider import Owned, Problem, Provider
from reconciler.engine.resource import Action, Change, Hazard, Observed, Ref, Resource
from reconciler.errors import RemoteError, RetryableError

KIND = "mem.thing"


def at(name: str) -> Address:
    return Address(KIND, name)


class MemoryProvider(Provider):
    """Serves kind "mem.thing": objects are dicts in self.world, fingerprinted by a version counter.

    An object's outputs are {"id": "<name>#<version>"}; one whose fields hold "data" reports a hazard on delete.
    """

    kinds = frozenset({KIND})

    def __init__(self):
        self.world: dict[str, dict] = {}  # name -> {"fields": {...}, "owner": str | None, "version": int}
        self.calls: list[tuple[str, str]] = []
        self.applied: list[Change] = []  # the changes as apply() received them (Refs resolved)
        self.fail: dict[str, list[Exception]] = {}  # address -> errors to raise on the next applies
        self.fail_reads: list[Exception] = []  # errors to raise on the next observes
        self.delay = 0.0
        self.on_observe = None  # called at each observe: the world moving by itself (a rollout progressing)
        self.quota = 4
        self.running = 0
        self.max_running = 0
        self._lock = threading.Lock()

    def put(self, name: str, owner: str | None = "demo", **fields) -> None:
        version = self.world.get(name, {}).get("version", 0) + 1
        self.world[name] = {"fields": fields or {"size": 1}, "owner": owner, "version": version}

    def observe(self, desired):
        self.calls.append(("observe", ",".join(r.address for r in desired)))
        if self.on_observe is not None:
            self.on_observe()
        if self.fail_reads:
            raise self.fail_reads.pop(0)
        return {r.address: self._observed(r.address, r.name) for r in desired}

    def _observed(self, address, name):
        live = self.world.get(name)
        if live is None:
            return None
        return Observed(address, f"mem://{name}", dict(live["fields"]), f"version {live['version']}", live["owner"],
                        outputs={"id": f"{name}#{live['version']}", **live["fields"]})

    def diff(self, desired, observed):
        if observed is None:
            return Change(desired.address, desired.kind, Action.CREATE, "missing", desired=desired)
        changes = resource_changes(desired, observed.fields)
        if not changes:
            return Change(desired.address, desired.kind, Action.NOOP, "up to date", desired=desired, observed=observed)
        action = Action.REPLACE if any(c.forces_replacement for c in changes) else Action.UPDATE
        return Change(desired.address, desired.kind, action, "differs", changes, desired, observed)

    def owned(self, spec_name, kinds, known):
        self.calls.append(("owned", spec_name))
        return [Owned(Resource(at(name), KIND, name, {}), self._observed(at(name), name))
                for name, live in sorted(self.world.items()) if live["owner"] == spec_name]

    def preflight(self, changes):
        """A change asking for more "chips" than `self.quota` would fail."""
        self.calls.append(("preflight", ",".join(c.address for c in changes)))
        return [Problem(c.address, "things.chips", f"{c.desired.fields['chips']} chips asked, quota {self.quota}")
                for c in changes if c.desired.fields.get("chips", 0) > self.quota]

    def hazard(self, change, going_inside):
        self.calls.append(("hazard", change.address))
        live = self.world.get(change.desired.name)
        if live is None or "data" not in live["fields"]:
            return None
        return Hazard(f"mem://{change.desired.name} holds {live['fields']['data']}", needs_approval=True,
                      destroy_flag="--force-delete-things")

    def apply(self, change, progress):
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.calls.append((change.action.value, change.address))
            self.applied.append(change)
        try:
            if self.delay:
                progress.sleep(self.delay)
            progress.update("working")
            errors = self.fail.get(change.address)
            if errors:
                raise errors.pop(0)
            resource = change.desired
            if change.action is Action.DELETE:
                self.world.pop(resource.name, None)
                return None
            self.put(resource.name, resource.params.get("owner", "demo"), **resource.fields)
            return self._observed(resource.address, resource.name)
        finally:
            with self._lock:
                self.running -= 1


def thing(name: str, depends_on=(), inside: str | None = None, params=None, requires=(), **fields) -> Resource:
    return Resource(address=at(name), kind=KIND, name=name, fields=fields or {"size": 1},
                    depends_on=tuple(at(d) for d in depends_on), inside=at(inside) if inside else None,
                    replace_on=frozenset({"zone"}), params={"owner": "demo", **(params or {})},
                    requires=tuple(requires))


def ref(name: str, output: str = "id") -> Ref:
    return Ref(at(name), output)


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

    def stopping(self, running, leaving):
        self.events.append(("leaving" if leaving else "stopping", ",".join(c.address for c, _ in running)))


TRANSIENT = RetryableError("mem.things.insert mem://x: 503 backend unavailable")
PERMANENT = RemoteError("mem.things.insert mem://x: 403 forbidden")
