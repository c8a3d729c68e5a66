"""Walk a plan's changes along the dependency graph with bounded parallelism, retrying transient failures.

Level-based like controller-runtime: every provider apply is idempotent, so an interrupted run is resumed by
planning again from live state; nothing here keeps state of its own. Values flow along the graph: each change gets
its Refs resolved from what its parents' applies returned (or, for parents left as they are, what the plan read).
"""

from __future__ import annotations

import graphlib
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

from reconciler.engine.address import Address
from reconciler.engine.graph import parents_of
from reconciler.engine.interrupts import interrupts_counted
from reconciler.engine.plan import Plan
from reconciler.engine.provider import Abandoned
from reconciler.engine.provider_set import ProviderSet
from reconciler.engine.resource import Action, Change, Observed, has_unknown, resolved
from reconciler.engine.retry import RetryPolicy
from reconciler.errors import RemoteError, RetryableError, SaxctlError


_WAKE_S = 0.2  # how soon the walk notices a Ctrl-C while every change under way is still busy
REQUIREMENT_POLL_S = 2.0  # how often a change waiting for a fact of its parent reads the parent again


class Reporter(Protocol):
    """How the walk is shown to a person (render/progress.py) or recorded (tests)."""

    def started(self, change: Change) -> None: ...
    def message(self, change: Change, text: str) -> None: ...
    def advanced(self, change: Change, done: int, total: int | None, unit: str) -> None: ...
    def retrying(self, change: Change, attempt: int, error: RetryableError, delay: float) -> None: ...
    def finished(self, change: Change, seconds: float) -> None: ...
    def failed(self, change: Change, error: SaxctlError, seconds: float) -> None: ...
    def skipped(self, change: Change, reason: str) -> None: ...
    def stopping(self, running: Sequence[tuple[Change, str | None]], leaving: bool) -> None:
        """Ctrl-C: what is still under way (with its remote operation, if any); leaving: the second Ctrl-C."""


@dataclass(frozen=True, slots=True)
class Outcome:
    change: Change
    status: str  # "done" | "failed" | "skipped" | "abandoned"
    seconds: float = 0.0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ApplyResult:
    outcomes: tuple[Outcome, ...]
    interrupted: bool = False
    abandoned: bool = False  # left at once (second Ctrl-C): some remote operations go on without us

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(outcome.status == "done" for outcome in self.outcomes)

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)


class DeadlineExceeded(RemoteError):
    """A change ran past its Resource.timeout_s; what it started may still be running remotely."""


class _ChangeProgress:
    """The Progress a provider sees for one change: forwards to the reporter, and carries the run's stop signals."""

    def __init__(self, change: Change, reporter: Reporter, leaving: threading.Event):
        self._change, self._reporter, self._leaving = change, reporter, leaving
        timeout = change.desired.timeout_s if change.desired is not None else None
        self._deadline = time.monotonic() + timeout if timeout else None
        self.operation_name: str | None = None

    def update(self, message: str) -> None:
        self._reporter.message(self._change, message)

    def advance(self, done: int, total: int | None = None, unit: str = "B") -> None:
        self._reporter.advanced(self._change, done, total, unit)

    def operation(self, description: str | None) -> None:
        self.operation_name = description

    def time_left(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    def sleep(self, seconds: float) -> None:
        left = self.time_left()
        if left is not None and left <= 0:
            raise self.deadline_error()
        if self._leaving.wait(seconds if left is None else min(seconds, left)):
            raise Abandoned(self._change.address)

    def deadline_error(self) -> DeadlineExceeded:
        timeout = self._change.desired.timeout_s if self._change.desired is not None else 0
        still = f"; {self.operation_name} is still running remotely and the next apply resumes it" \
            if self.operation_name else ""
        return DeadlineExceeded(f"{self._change.address}: gave up after {timeout:.0f} s{still}")


def apply_plan(
    plan: Plan,
    providers: ProviderSet,
    reporter: Reporter,
    *,
    parallelism: int = 8,
    retry: RetryPolicy = RetryPolicy(),
    only: Sequence[Address] | None = None,
    outputs: Mapping[Address, Mapping[str, Any] | None] | None = None,
) -> ApplyResult:
    """Perform the plan's actionable changes (or just `only` of them); each waits for the changes it depends on.

    A failure skips what depends on it and lets independent work finish. The first Ctrl-C stops starting new
    changes and names what is still under way; the second leaves at once (remote operations go on, and the next
    apply resumes them). `outputs` seeds what parents are known to hold (from an earlier phase of the same run).
    """
    changes = [c for c in plan.actionable if only is None or c.address in only]
    known = _plan_outputs(plan)
    known.update(outputs or {})
    walk = _Walk(changes, providers, reporter, retry, known,
                 {change.address: change.desired for change in plan.changes if change.desired is not None})
    return walk.run(max(1, parallelism))


def _plan_outputs(plan: Plan) -> dict[Address, Mapping[str, Any] | None]:
    """What the plan read of every object that is left as it is or only updated (their outputs do not move)."""
    return {change.address: change.observed.outputs for change in plan.changes
            if change.observed is not None and change.action in (Action.NOOP, Action.UPDATE, Action.DELETE)}


class _Walk:
    def __init__(self, changes: list[Change], providers: ProviderSet, reporter: Reporter, retry: RetryPolicy,
                 outputs: dict[Address, Mapping[str, Any] | None], resources: Mapping[Address, Any] = {}):
        self.changes = {change.address: change for change in changes}
        self.resources = resources  # every desired resource of the plan: what a Requirement reads again
        self.providers, self.reporter, self.retry = providers, reporter, retry
        self.outputs = outputs
        self.outputs_lock = threading.Lock()
        self.outcomes: dict[Address, Outcome] = {}
        self.leaving = threading.Event()
        self.progress: dict[Address, _ChangeProgress] = {}
        self.waits_on = _prerequisites(changes, lambda change: providers.for_kind(change.kind).claims(change))

    def run(self, parallelism: int) -> ApplyResult:
        sorter = graphlib.TopologicalSorter(self.waits_on)
        sorter.prepare()
        running: dict[Future, Change] = {}
        interrupted = False
        pool = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="apply")
        try:
            with interrupts_counted() as presses:
                while sorter.is_active():
                    if presses.count >= 2:  # the second Ctrl-C: leave now
                        self.leaving.set()
                        self.reporter.stopping(self._still_running(running), leaving=True)
                        return self._result(interrupted=True, abandoned=True, running=running)
                    if presses.count and not interrupted:
                        interrupted = True
                        self.reporter.stopping(self._still_running(running), leaving=False)
                    if not interrupted:
                        self._schedule(sorter, pool, running)
                    if not running:
                        if interrupted or not sorter.is_active():
                            break
                        continue
                    done, _ = wait(running, timeout=_WAKE_S, return_when=FIRST_COMPLETED)
                    for future in done:
                        change = running.pop(future)
                        self.outcomes[change.address] = future.result()
                        sorter.done(change.address)
        finally:
            pool.shutdown(wait=not self.leaving.is_set(), cancel_futures=True)
        return self._result(interrupted=interrupted, abandoned=False, running={})

    def _schedule(self, sorter: graphlib.TopologicalSorter, pool: ThreadPoolExecutor,
                  running: dict[Future, Change]) -> None:
        for address in sorted(sorter.get_ready()):
            change = self.changes[address]
            blocker = self._failed_blocker(change)
            if blocker is not None:
                reason = f"{blocker} did not complete"
                self.reporter.skipped(change, reason)
                self.outcomes[address] = Outcome(change, "skipped", error=reason)
                sorter.done(address)
            else:
                running[pool.submit(self._run, change)] = change

    def _result(self, *, interrupted: bool, abandoned: bool, running: dict[Future, Change]) -> ApplyResult:
        for change in running.values():
            if change.address in self.progress:  # started; the others were still queued
                self.outcomes[change.address] = Outcome(change, "abandoned", error="left while under way")
        for address, change in self.changes.items():
            if address not in self.outcomes:
                self.reporter.skipped(change, "interrupted")
                self.outcomes[address] = Outcome(change, "skipped", error="interrupted")
        ordered = tuple(self.outcomes[address] for address in self.changes)
        return ApplyResult(ordered, interrupted, abandoned)

    def _still_running(self, running: dict[Future, Change]) -> list[tuple[Change, str | None]]:
        return [(change, self.progress[change.address].operation_name)
                for change in running.values() if change.address in self.progress]

    def _failed_blocker(self, change: Change) -> Address | None:
        for address in sorted(self.waits_on[change.address]):
            outcome = self.outcomes.get(address)
            if outcome is not None and outcome.status != "done":
                return address
        return None

    def _run(self, change: Change) -> Outcome:
        started = time.monotonic()
        progress = _ChangeProgress(change, self.reporter, self.leaving)
        self.progress[change.address] = progress
        self.reporter.started(change)
        try:
            ready = self._with_inputs(change)
            self._await_requirements(ready, progress)
            provider = self.providers.for_kind(change.kind)
            result = self.retry.call(
                lambda: provider.apply(ready, progress),
                lambda attempt, error, delay: self.reporter.retrying(change, attempt, error, delay),
                time_left=progress.time_left,
            )
        except Abandoned:
            return Outcome(change, "abandoned", time.monotonic() - started, "left while under way")
        except SaxctlError as error:
            if isinstance(error, RetryableError) and progress.time_left() is not None and progress.time_left() <= 0:
                error = progress.deadline_error()
            seconds = time.monotonic() - started
            self.reporter.failed(change, error, seconds)
            return Outcome(change, "failed", seconds, error.message)
        self._record(change, result)
        seconds = time.monotonic() - started
        self.reporter.finished(change, seconds)
        return Outcome(change, "done", seconds)

    def _with_inputs(self, change: Change) -> Change:
        if change.desired is None:
            return change
        with self.outputs_lock:
            ready = resolved(change.desired, dict(self.outputs))
        if has_unknown(ready.fields) or has_unknown(ready.params):
            missing = [p for p in parents_of(change.desired) if self.outputs.get(p) is None]
            raise SaxctlError(f"{change.address}: the values it needs from {', '.join(missing)} are not known "
                              "(did its apply return them?)")
        return change.with_desired(ready)

    def _await_requirements(self, change: Change, progress: _ChangeProgress) -> None:
        """Right before the call: each Requirement read again from its resource; one that settles is waited for."""
        if change.action is Action.DELETE or change.desired is None:
            return
        for requirement in change.desired.requires:
            started = time.monotonic()
            while True:
                why = requirement.unmet(self._read_outputs(requirement.address))
                if why is None:
                    break
                waited = time.monotonic() - started
                if not requirement.settles or waited >= requirement.wait_s:
                    after = f" after waiting {waited:.0f} s" if requirement.settles else ""
                    raise RemoteError(f"{change.address} cannot be changed: {why}{after}")
                progress.update(f"waiting: {why} ({waited:.0f}/{requirement.wait_s:.0f} s)")
                progress.sleep(min(REQUIREMENT_POLL_S, max(0.05, requirement.wait_s / 20)))

    def _read_outputs(self, address: Address) -> Mapping[str, Any] | None:
        """The outputs of the resource at address as they are now (None: not known, or it does not exist)."""
        resource = self.resources.get(address)
        if resource is None:
            return None
        with self.outputs_lock:
            ready = resolved(resource, dict(self.outputs))
        if has_unknown(ready.params):
            return None
        live = self.providers.read(lambda: self.providers.observe([ready]).get(address), f"reading {address}")
        return live.outputs if live is not None else None

    def _record(self, change: Change, result: Observed | None) -> None:
        with self.outputs_lock:
            self.outputs[change.address] = result.outputs if result is not None else None


def _prerequisites(changes: Sequence[Change],
                   claims: Callable[[Change], frozenset[str]]) -> dict[Address, set[Address]]:
    """Creates, updates and replaces wait for their parents' changes; deletes wait for their children's deletes.

    A create, update or replace also waits for the deletes that free what it may need: the name space of its kind in
    its parent (an object that left the spec and one that took its place), and what its provider says both claim (a
    region's TPU quota). Deletes never wait for anything but deletes, so these edges make no cycle.
    """
    in_plan = {change.address: change for change in changes}
    waits_on: dict[Address, set[Address]] = {address: set() for address in in_plan}
    for change in changes:
        parents = parents_of(change.desired) if change.desired is not None else ()
        for parent in parents:
            if parent not in in_plan:
                continue
            if change.action is Action.DELETE and in_plan[parent].action is Action.DELETE:
                waits_on[parent].add(change.address)
            elif change.action is not Action.DELETE:
                waits_on[change.address].add(parent)
    claimed = {change.address: _room(change) | claims(change) for change in changes}
    deletes = [change.address for change in changes if change.action is Action.DELETE]
    for change in changes:
        if change.action is not Action.DELETE:
            waits_on[change.address].update(freed for freed in deletes if claimed[freed] & claimed[change.address])
    return waits_on


def _room(change: Change) -> frozenset[str]:
    """The name space an object takes: its kind's, in the object it lives in."""
    inside = change.desired.inside if change.desired is not None else None
    return frozenset({f"{change.kind} names in {inside or 'the project'}"})
