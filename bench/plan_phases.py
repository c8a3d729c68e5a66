"""Run one `saxctl` command as the CLI does, timing its phases, and write them as JSON to OUT:
python -m bench.plan_phases OUT PARENT_PERF_COUNTER -- SAXCTL_ARGS...

Phases, one after the other: start (interpreter and site, from the parent's clock: perf_counter is CLOCK_MONOTONIC,
the same in both processes), cli (importing reconciler.cli), command (parsing the arguments and what the command
imports before it opens the spec), spec (load, checks, the desired resources), connect (the lock homes' storage
client), plan (the reads and the diff, wall), render (from the plan to the exit). Within connect and plan, each API
family's import and reads: its provider is wrapped so that the thread running one of its methods is marked as that
family's, and every outermost import on a marked thread counts as the family's import, the rest of the method as its
reads. Families read in parallel, so their wall times overlap; their CPU times (time.thread_time, each thread's own)
add up and do not depend on the machine's load.

Nothing of a client is replaced: the providers make their real calls; only their methods and `import` are timed.
"""

from __future__ import annotations

import atexit
import builtins
import json
import sys
import threading
import time

_STARTED = time.perf_counter()
_local = threading.local()  # .family: the family whose method runs on this thread; .depth: import nesting
_lock = threading.Lock()
_families: dict[str, dict[str, float]] = {}
_marks: dict[str, float] = {"driver": _STARTED}
_real_import = builtins.__import__
_PROVIDER_METHODS = ("observe", "owned", "diff", "preflight", "hazard", "describe")


def _add(family: str, key: str, value: float) -> None:
    with _lock:
        entry = _families.setdefault(family, {"import_cpu": 0.0, "import_wall": 0.0, "reads_cpu": 0.0,
                                               "reads_wall": 0.0, "imported_modules": 0})
        entry[key] += value


def _timed_import(name, globals=None, locals=None, fromlist=(), level=0):
    depth = getattr(_local, "depth", 0)
    family = getattr(_local, "family", None)
    if depth or family is None:
        _local.depth = depth + 1
        try:
            return _real_import(name, globals, locals, fromlist, level)
        finally:
            _local.depth = depth
    before, cpu, wall = len(sys.modules), time.thread_time(), time.perf_counter()
    _local.depth = 1
    try:
        return _real_import(name, globals, locals, fromlist, level)
    finally:
        _local.depth = 0
        _add(family, "import_cpu", time.thread_time() - cpu)
        _add(family, "import_wall", time.perf_counter() - wall)
        _add(family, "imported_modules", len(sys.modules) - before)


def _in_family(family: str, call, *, wall: bool = True):
    """call() on this thread as the family's: its time less the imports it made is the family's reads (its wall time
    too unless `wall` is False: a thread the family started runs within the wall time of the call that started it)."""
    outer = getattr(_local, "family", None)
    if outer is not None:  # a provider calling another's method: already counted by the outer call
        return call()
    _local.family = family
    _add(family, "reads_cpu", 0.0)
    imports_cpu, imports_wall = _families[family]["import_cpu"], _families[family]["import_wall"]
    cpu, wall = time.thread_time(), time.perf_counter()
    try:
        return call()
    finally:
        _local.family = None
        spent_cpu, spent_wall = time.thread_time() - cpu, time.perf_counter() - wall
        # Imports on other threads of the same family may land meanwhile: reads never go below zero.
        _add(family, "reads_cpu", max(0.0, spent_cpu - (_families[family]["import_cpu"] - imports_cpu)))
        if wall:
            _add(family, "reads_wall", max(0.0, spent_wall - (_families[family]["import_wall"] - imports_wall)))


_real_start = threading.Thread.start


def _start_in_family(thread: threading.Thread) -> None:
    """A thread started by a family's method (a provider's own pool of readers) works for that family too."""
    family = getattr(_local, "family", None)
    if family is not None:
        run = thread.run
        thread.run = lambda: _in_family(family, run, wall=False)
    _real_start(thread)


class _TimedProvider:
    def __init__(self, family: str, provider):
        self._family, self._provider = family, provider
        self.kinds = provider.kinds

    def __getattr__(self, name: str):
        attribute = getattr(self._provider, name)
        if name not in _PROVIDER_METHODS:
            return attribute
        return lambda *args, **kwargs: _in_family(self._family, lambda: attribute(*args, **kwargs))


def _instrument() -> None:
    import dataclasses

    from reconciler import runner
    from reconciler.providers import table

    def timed_factory(family):
        return lambda clients: _in_family(family.name, lambda: _TimedProvider(family.name, family.provider(clients)))

    def phase(name: str, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                _marks[name] = _marks.get(name, 0.0) + time.perf_counter() - started
        return timed

    # Connecting builds the lock homes' storage client: the gcs family's import, not the spec's.
    connect = phase("connect", table.connect)
    table.connect = lambda *args, **kwargs: _in_family("gcs", lambda: connect(*args, **kwargs))
    table.FAMILIES = tuple(family if family.provider is None else
                           dataclasses.replace(family, provider=timed_factory(family)) for family in table.FAMILIES)

    open_workspace = phase("spec", runner.open_workspace)

    def first_workspace(*args, **kwargs):
        _marks.setdefault("workspace_at", time.perf_counter())
        return open_workspace(*args, **kwargs)

    runner.open_workspace = first_workspace
    table.desired_resources = phase("desired", table.desired_resources)  # called by make_plan: spec, not plan
    plan_done = phase("plan", runner.make_plan)

    def make_plan(*args, **kwargs):
        try:
            return plan_done(*args, **kwargs)
        finally:
            _marks["plan_end"] = time.perf_counter()

    runner.make_plan = make_plan


def _write(out: str, parent_started: float) -> None:
    import resource

    ended = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    plan_end = _marks.get("plan_end", ended)
    desired = _marks.get("desired", 0.0)
    connect = _marks.get("connect", 0.0)
    command = _marks.get("workspace_at", _marks["run_at"]) - _marks["run_at"]
    phases = {"start": _STARTED - parent_started, "cli": _marks["cli"], "command": command,
              "spec": _marks.get("spec", 0.0) - connect + desired, "connect": connect,
              "plan": _marks.get("plan", 0.0) - desired, "render": ended - plan_end}
    with open(out, "w") as handle:
        json.dump({"phases_seconds": phases, "families": _families, "modules": len(sys.modules),
                   "cpu_seconds": usage.ru_utime + usage.ru_stime, "seconds": ended - parent_started}, handle)


def main() -> None:
    out, parent_started, separator, *args = sys.argv[1:]
    assert separator == "--", "usage: python -m bench.plan_phases OUT PARENT_PERF_COUNTER -- SAXCTL_ARGS..."
    builtins.__import__ = _timed_import
    threading.Thread.start = _start_in_family
    started = time.perf_counter()
    import reconciler.cli

    _marks["cli"] = time.perf_counter() - started
    _marks["run_at"] = time.perf_counter()  # the command's: _instrument imports the runner the command would import
    _instrument()
    atexit.register(_write, out, float(parent_started))
    sys.argv = ["saxctl", *args]
    reconciler.cli.run()

if __name__ == "__main__":
    main()
