"""The use cases behind the CLI: open a spec, plan, and carry a plan out under the lock.

This is where the spec, the provider table and the engine meet; the engine itself knows none of them, and this
module knows no provider: the table says where a run's lock may live.

The lock is taken before planning and held through confirmation and apply, so what was shown is what is done.
A saved plan is applied under the lock after a fresh read confirms nothing it observed has moved. On the very first
apply the lock's home (the admin bucket) does not exist yet: it is created alone, the lock taken, and the rest of
the plan checked against the world again before anything else is done.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

from reconciler.engine.lock import LockInfo, RunLock
from reconciler.engine.plan import Approvals, Plan, SpecRef, build_plan, stale_objects
from reconciler.engine.resource import Action
from reconciler.engine.retry import RetryPolicy
from reconciler.errors import ConflictError, RetryableError, SaxctlError, StalePlanError
from reconciler.providers import table
from reconciler.spec.loader import load_spec
from reconciler.spec.model import Spec

if TYPE_CHECKING:  # imported where used: a plan needs neither apply's engine nor drift's records
    from reconciler.drift.classify import Decision
    from reconciler.drift.record import DriftRecord
    from reconciler.engine.apply import ApplyResult, Reporter


@dataclass(frozen=True, slots=True)
class Workspace:
    """A loaded spec with the providers that serve it and the homes its lock may live in."""

    spec: Spec
    spec_ref: SpecRef
    connection: table.Connection


@dataclass(frozen=True, slots=True)
class PlanOptions:
    mode: str = "apply"  # or "destroy"
    adopt: bool = False
    targets: tuple[str, ...] = ()
    approvals: Approvals = Approvals()


class Ui(Protocol):
    """What a run shows and asks; the CLI implements it with rich, tests with a recorder."""

    reporter: Reporter

    def say(self, text: str) -> None: ...
    def show_plan(self, plan: Plan) -> None: ...
    def confirm(self, plan: Plan) -> None:
        """Return when the user agreed; raise SaxctlError when not."""


def open_workspace(spec_path: str, on_read_retry: Callable[[str, int, RetryableError, float], None] | None = None,
                   options: table.ProviderOptions | None = None) -> Workspace:
    spec, spec_ref = _load(spec_path)
    return Workspace(spec, spec_ref, table.connect(spec, on_read_retry, options))


def open_offline_workspace(applied_path: str | None, spec_path: str, options: table.ProviderOptions | None = None
                           ) -> Workspace:
    """SPEC in the world applying the spec at applied_path leaves (None: a world with nothing of SPEC), modelled: no
    call, no credentials, no lock (`saxctl plan --from --to`). Its providers' `skipped` says what a plan of it could
    not check."""
    spec, spec_ref = _load(spec_path)
    applied = load_spec(applied_path) if applied_path else None
    return Workspace(spec, spec_ref, table.Connection(table.offline(spec, applied, options), []))


def _load(spec_path: str) -> tuple[Spec, SpecRef]:
    spec = load_spec(spec_path)
    return spec, SpecRef(spec.name, spec_path, hashlib.sha256(Path(spec_path).read_bytes()).hexdigest())


def make_plan(workspace: Workspace, options: PlanOptions = PlanOptions()) -> Plan:
    return build_plan(
        table.desired_resources(workspace.spec),
        workspace.connection.providers,
        workspace.spec_ref,
        mode=options.mode,
        adopt=options.adopt,
        targets=options.targets,
        unmanaged=table.unmanaged_parts(workspace.spec) if options.mode == "apply" else (),
        approvals=options.approvals,
    )


def open_saved_plan_workspace(plan: Plan, on_read_retry=None, options: table.ProviderOptions | None = None
                              ) -> Workspace:
    """The spec a saved plan was made from, refused if the file changed since (the plan would not be its plan)."""
    if not Path(plan.spec.file).is_file():
        raise SaxctlError(
            f"the plan was made from {plan.spec.file}, which is not there",
            hint="Apply a saved plan from the directory where it was made.",
        )
    workspace = open_workspace(plan.spec.file, on_read_retry, options)
    if workspace.spec_ref.sha256 != plan.spec.sha256:
        raise StalePlanError(
            f"{plan.spec.file} changed since the plan was made", hint="Run `saxctl plan` again and apply the new plan."
        )
    return workspace


def new_lock(workspace: Workspace, command: str, ui: Ui, lock_timeout_s: float) -> RunLock:
    def lost(text: str) -> None:
        # Someone broke our lock (force-unlock): another run may start, so stop starting changes, as Ctrl-C does.
        ui.say(f"Warning: {text}; no new change will start")
        os.kill(os.getpid(), signal.SIGINT)

    return RunLock(workspace.connection.lock_homes, LockInfo.for_this_process(command, workspace.spec.name),
                   timeout_s=lock_timeout_s, say=ui.say, on_lost=lost)


def apply_spec(workspace: Workspace, options: PlanOptions, ui: Ui, *, command: str, parallelism: int = 8,
               lock_timeout_s: float = 0.0) -> tuple[Plan, ApplyResult | None, float]:
    """Lock, plan, show, confirm, apply: `saxctl apply SPEC` and `saxctl destroy SPEC`."""
    with new_lock(workspace, command, ui, lock_timeout_s) as lock:
        locked = lock.acquire()
        plan = make_plan(workspace, options)
        ui.show_plan(plan)
        refuse_unapplicable(plan, workspace)
        if not plan.has_changes:
            return plan, None, 0.0
        ui.confirm(plan)
        result, seconds = _execute(workspace, plan, lock, locked, ui, parallelism)
        return plan, result, seconds


def apply_saved(workspace: Workspace, plan: Plan, ui: Ui, *, command: str, parallelism: int = 8,
                lock_timeout_s: float = 0.0) -> tuple[ApplyResult | None, float]:
    """Lock, check the saved plan against the world, apply exactly it: `saxctl apply PLANFILE`."""
    refuse_unapplicable(plan, workspace)
    with new_lock(workspace, command, ui, lock_timeout_s) as lock:
        locked = lock.acquire()
        if locked:
            ensure_fresh(workspace, plan)
        if not plan.has_changes:
            return None, 0.0
        return _execute(workspace, plan, lock, locked, ui, parallelism)


@dataclass(frozen=True, slots=True)
class DriftRun:
    plan: Plan
    decision: Decision
    result: ApplyResult | None  # None: nothing was applied (a report, or nothing safe to correct)
    record: DriftRecord  # saxctl/drift.json as this run left it (as read, for a report)


def correct_drift(workspace: Workspace, approvals: Approvals, ui: Ui, *, correct: bool, fight_limit: int,
                  command: str, parallelism: int = 8, lock_timeout_s: float = 0.0) -> DriftRun:
    """`saxctl drift SPEC`: plan, classify each drifted field; with `correct`, under the lock, apply the safe ones
    (never asking) and record the run in saxctl/drift.json, whose streaks stop a fight with another controller."""
    from reconciler.drift import record as drift_record
    from reconciler.drift.classify import CORRECTED, IGNORED, LEFT, classify, uncorrected
    from reconciler.drift.record import RecordStore

    records = RecordStore(workspace.connection.admin_record(drift_record.RECORD_OBJECT), workspace.spec.name)
    rules = workspace.spec.drift_ignore
    if not correct:
        record = records.load()
        plan = make_plan(workspace, PlanOptions(approvals=approvals))
        return DriftRun(plan, classify(plan, rules, approvals, stopped=record.stopped(fight_limit)), None, record)
    with new_lock(workspace, command, ui, lock_timeout_s) as lock:
        locked = lock.acquire()
        record = records.load()
        plan = make_plan(workspace, PlanOptions(approvals=approvals))
        decision = classify(plan, rules, approvals, stopped=record.stopped(fight_limit))
        result = None
        if decision.to_apply:
            # What is not corrected stays in the plan as a no-op: its outputs still flow to what is corrected.
            safe = replace(plan, changes=tuple(c if c.address in decision.to_apply else replace(c, action=Action.NOOP)
                                               for c in plan.changes), conflicts=(), blocked=(), problems=())
            result, _ = _execute(workspace, safe, lock, locked, ui, parallelism)
            decision = uncorrected(decision, result)
        summary = {outcome: decision.count(outcome) for outcome in (CORRECTED, LEFT, IGNORED)}
        record = record.after_run(plan.created_at, decision.drifts, result is None or result.ok, summary)
        if not records.save(record):
            ui.say(f"No drift record written: {records.location} has no bucket yet.")
        return DriftRun(plan, decision, result, record)


def refuse_unapplicable(plan: Plan, workspace: Workspace) -> None:
    if plan.problems:
        raise SaxctlError("the plan would fail before it is done (found before any write):\n  "
                          + "\n  ".join(problem_lines(plan, workspace)),
                          hint="Change the spec, or the quota or zone it names, and plan again.")
    if plan.conflicts:
        raise ConflictError(f"the plan has {len(plan.conflicts)} conflict(s) and cannot be applied",
                            hint="Resolve them, or rerun with --adopt to take over objects saxctl did not create.")
    if plan.blocked:
        raise ConflictError(f"the plan has {len(plan.blocked)} blocked change(s) and cannot be applied: they would "
                            "delete what you have not agreed to lose",
                            hint=" ".join(f"{blocked.address}: {blocked.hint}." for blocked in plan.blocked))


def problem_lines(plan: Plan, workspace: Workspace) -> list[str]:
    """Each preflight problem at the spec line it is about: file:line:col: field: message."""
    lines = []
    for problem in plan.problems:
        line, column = workspace.spec.source.locate(problem.field)
        lines.append(f"{plan.spec.file}:{line}:{column}: {problem.field}: {problem.message}")
    return lines


def ensure_fresh(workspace: Workspace, plan: Plan, *, what: str = "the saved plan", ignore: Sequence[str] = ()) -> None:
    fresh = make_plan(workspace, PlanOptions(mode=plan.mode, targets=plan.targets))
    moved = stale_objects(plan, fresh, ignore=ignore)
    if moved:
        raise StalePlanError(
            f"{what} is stale: the world changed since it was made:\n  " + "\n  ".join(moved),
            hint="Run `saxctl plan` again and review the new plan.",
        )


def _execute(workspace: Workspace, plan: Plan, lock: RunLock, locked: bool, ui: Ui,
             parallelism: int) -> tuple[ApplyResult, float]:
    from reconciler.engine.apply import apply_plan

    started = time.monotonic()
    retry = RetryPolicy.from_environment()
    providers = workspace.connection.providers

    def walk(only: Sequence[str], **extra) -> ApplyResult:
        return apply_plan(plan, providers, ui.reporter, parallelism=parallelism, retry=retry, only=only, **extra)

    outcomes: tuple = ()
    pending = [change.address for change in plan.actionable]
    if not locked:
        first = _bootstrap(workspace, plan, lock, ui, walk)
        if first is not None:
            if not first.ok:
                return first, time.monotonic() - started
            outcomes = first.outcomes
            pending = [address for address in pending if address != lock.home.address]

    # Changes that delete or replace where the lock lives go last, once the lock has moved out.
    last = [a for a in pending if lock.holds(a) and plan.change_at(a).action in (Action.DELETE, Action.REPLACE)]
    result = walk([a for a in pending if a not in last])
    outcomes += result.outcomes
    if not result.ok:
        return replace(result, outcomes=outcomes), time.monotonic() - started
    for address in last:
        ui.say(lock.vacate(address))
        result = walk([address])
        outcomes += result.outcomes
        if not result.ok:
            break
        if plan.change_at(address).action is Action.REPLACE:
            lock.reoccupy()
    return replace(result, outcomes=outcomes), time.monotonic() - started


def _bootstrap(workspace: Workspace, plan: Plan, lock: RunLock, ui: Ui, walk) -> ApplyResult | None:
    """The lock's home does not exist: create it alone, take the lock, check the rest of the plan again."""
    home = lock.home
    creates_home = plan.change_at(home.address)
    if creates_home is None or creates_home.action is not Action.CREATE:
        ui.say(f"No lock taken: {home.address}, where the lock lives, does not exist.")
        return None
    first = walk([home.address])
    if not first.ok:
        return first
    if not lock.acquire():
        raise SaxctlError(f"{home.address} was created but the lock cannot be taken in it ({home.store.location})")
    ensure_fresh(workspace, plan, what="the plan", ignore=[home.address])
    return first
