"""Walk a plan's changes along the dependency graph with bounded parallelism, retrying transient failures.

Level-based like controller-runtime: every provider apply is idempotent, so an interrupted run is resumed by
planning again from live state; nothing here keeps state of its own.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol, Sequence

from reconciler.engine.plan import Plan, ProviderSet
from reconciler.engine.resource import Action, Address, Change
from reconciler.engine.retry import RetryPolicy
from reconciler.errors import RetryableError, SaxctlError


class Reporter(Protocol):
    """How the walk is shown to a person (render/progress.py) or recorded (tests)."""

    def started(self, change: Change) -> None: ...
    def message(self, change: Change, text: str) -> None: ...
    def advanced(self, change: Change, done: int, total: int | None, unit: str) -> None: ...
    def retrying(self, change: Change, attempt: int, error: RetryableError, delay: float) -> None: ...
    def finished(self, change: Change, seconds: float) -> None: ...
    def failed(self, change: Change, error: SaxctlError, seconds: float) -> None: ...
    def skipped(self, change: Change, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    change: Change
    status: str  # "done" | "failed" | "skipped"
    seconds: float = 0.0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ApplyResult:
    outcomes: tuple[Outcome, ...]
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(outcome.status == "done" for outcome in self.outcomes)

    def count(self, status: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)


class _ChangeProgress:
    """The Progress a provider sees for one change, forwarding to the reporter."""

    def __init__(self, change: Change, reporter: Reporter):
        self._change, self._reporter = change, reporter

    def update(self, message: str) -> None:
        self._reporter.message(self._change, message)

    def advance(self, done: int, total: int | None = None, unit: str = "B") -> None:
        self._reporter.advanced(self._change, done, total, unit)


def apply_plan(
    plan: Plan,
    providers: ProviderSet,
    reporter: Reporter,
    *,
    parallelism: int = 8,
    retry: RetryPolicy = RetryPolicy(),
    only: Sequence[Address] | None = None,
) -> ApplyResult:
    """Perform the plan's actionable changes (or just `only` of them); each waits for the changes it depends on.

    A failure skips what depends on it and lets independent work finish. Ctrl-C stops scheduling new changes,
    waits for the ones under way (an API call cut halfway helps nobody) and returns interrupted=True.
    """
    changes = [c for c in plan.actionable if only is None or c.address in only]
    waits_on = _prerequisites(changes)
    outcomes: dict[Address, Outcome] = {}
    running: dict[Future, Change] = {}
    interrupted = False
    cancelled = threading.Event()

    def run(change: Change) -> Outcome:
        started = time.monotonic()
        reporter.started(change)
        provider = providers.for_kind(change.kind)
        progress = _ChangeProgress(change, reporter)
        try:
            retry.call(
                lambda: provider.apply(change, progress),
                lambda attempt, error, delay: reporter.retrying(change, attempt, error, delay),
            )
        except SaxctlError as error:
            seconds = time.monotonic() - started
            reporter.failed(change, error, seconds)
            return Outcome(change, "failed", seconds, error.message)
        seconds = time.monotonic() - started
        reporter.finished(change, seconds)
        return Outcome(change, "done", seconds)

    with ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="apply") as pool:
        pending = list(changes)
        while pending or running:
            if not cancelled.is_set():
                for change in list(pending):
                    blockers = waits_on[change.address]
                    failed = [a for a in blockers if a in outcomes and outcomes[a].status != "done"]
                    if failed:
                        pending.remove(change)
                        reason = f"{failed[0]} did not complete"
                        reporter.skipped(change, reason)
                        outcomes[change.address] = Outcome(change, "skipped", error=reason)
                    elif all(a in outcomes for a in blockers):
                        pending.remove(change)
                        running[pool.submit(run, change)] = change
            if not running:
                if cancelled.is_set() or not pending:
                    break
                continue
            try:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:
                cancelled.set()
                interrupted = True
                continue
            for future in done:
                change = running.pop(future)
                outcomes[change.address] = future.result()
        for change in pending:
            reporter.skipped(change, "interrupted")
            outcomes[change.address] = Outcome(change, "skipped", error="interrupted")
    return ApplyResult(tuple(outcomes[c.address] for c in changes if c.address in outcomes), interrupted)


def _prerequisites(changes: Sequence[Change]) -> dict[Address, set[Address]]:
    """Creates and updates wait for their dependencies' changes; deletes wait for their dependents' deletes."""
    in_plan = {change.address: change for change in changes}
    waits_on: dict[Address, set[Address]] = {address: set() for address in in_plan}
    for change in changes:
        dependencies = change.desired.depends_on if change.desired is not None else ()
        for dependency in dependencies:
            if dependency not in in_plan:
                continue
            if change.action is Action.DELETE and in_plan[dependency].action is Action.DELETE:
                waits_on[dependency].add(change.address)
            elif change.action is not Action.DELETE:
                waits_on[change.address].add(dependency)
    return waits_on
