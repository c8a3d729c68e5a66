"""The use cases behind the CLI: open a spec, plan, and carry a plan out under the lock.

This is where the spec, the providers and the engine meet; the engine itself knows none of them.
"""

from __future__ import annotations

import hashlib
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from reconciler.engine.apply import ApplyResult, Reporter, apply_plan
from reconciler.engine.lock import LockInfo, LockStore, held_lock
from reconciler.engine.plan import Plan, ProviderSet, SpecRef, build_plan, stale_objects
from reconciler.engine.resource import ABSENT, Action
from reconciler.engine.retry import RetryPolicy
from reconciler.errors import SaxctlError, StalePlanError
from reconciler.providers import registry
from reconciler.providers.gcs import bucket
from reconciler.spec.loader import load_spec
from reconciler.spec.model import Spec


@dataclass(frozen=True, slots=True)
class Workspace:
    """A loaded spec with the providers that serve it and the lock that guards it."""

    spec: Spec
    spec_ref: SpecRef
    providers: ProviderSet
    lock_store: LockStore


def open_workspace(spec_path: str, options: registry.ProviderOptions) -> Workspace:
    spec = load_spec(spec_path)
    digest = hashlib.sha256(Path(spec_path).read_bytes()).hexdigest()
    connection = registry.connect(spec, options)
    return Workspace(spec, SpecRef(spec.name, spec_path, digest), connection.providers, connection.lock_store)


def make_plan(workspace: Workspace, *, mode: str = "apply", adopt: bool = False, targets: Sequence[str] = ()) -> Plan:
    return build_plan(
        registry.desired_resources(workspace.spec),
        workspace.providers,
        workspace.spec_ref,
        mode=mode,
        adopt=adopt,
        targets=targets,
        unmanaged=registry.unmanaged_parts(workspace.spec) if mode == "apply" else (),
    )


def open_saved_plan_workspace(plan: Plan, options: registry.ProviderOptions) -> Workspace:
    """The spec a saved plan was made from, refused if the file changed since (the plan would not be its plan)."""
    if not Path(plan.spec.file).is_file():
        raise SaxctlError(
            f"the plan was made from {plan.spec.file}, which is not there",
            hint="Apply a saved plan from the directory where it was made.",
        )
    workspace = open_workspace(plan.spec.file, options)
    if workspace.spec_ref.sha256 != plan.spec.sha256:
        raise StalePlanError(
            f"{plan.spec.file} changed since the plan was made", hint="Run `saxctl plan` again and apply the new plan."
        )
    return workspace


def ensure_fresh(plan: Plan, providers: ProviderSet) -> None:
    moved = stale_objects(plan, providers)
    if moved:
        raise StalePlanError(
            "the saved plan is stale: the world changed since it was made:\n  " + "\n  ".join(moved),
            hint="Run `saxctl plan` again and review the new plan.",
        )


def execute(
    workspace: Workspace,
    plan: Plan,
    reporter: Reporter,
    *,
    command: str,
    say: Callable[[str], None],
    parallelism: int = 8,
    saved: bool = False,
) -> tuple[ApplyResult, float]:
    """Carry out a plan under the lock in the admin bucket.

    The lock lives in the admin bucket, so when the plan creates that bucket it is created first, alone,
    and the rest runs under the lock. A saved plan is checked against the live state before anything
    is done and again once the lock is held.
    """
    started = time.monotonic()
    retry = RetryPolicy.from_environment()
    if saved:
        ensure_fresh(plan, workspace.providers)

    admin = bucket.address("admin")
    admin_change = next((c for c in plan.actionable if c.address == admin), None)
    outcomes = ()
    if admin_change is not None and admin_change.action is Action.CREATE:
        first = apply_plan(plan, workspace.providers, reporter, parallelism=1, retry=retry, only=[admin])
        if not first.ok:
            return first, time.monotonic() - started
        outcomes = first.outcomes
    done_first = {outcome.change.address for outcome in outcomes}
    rest = [c.address for c in plan.actionable if c.address not in done_first]

    if plan.fingerprints.get(admin) == ABSENT and not outcomes:
        # Only a destroy (or a plan targeted away from it) gets here: no bucket, so no lock to take.
        say(f"No lock taken: the admin bucket gs://{workspace.spec.buckets.admin.name} does not exist.")
        lock = nullcontext()
    else:
        lock = held_lock(workspace.lock_store, LockInfo.for_this_process(command, workspace.spec.name))
    with lock:
        if saved and outcomes:
            ensure_fresh(_without(plan, admin), workspace.providers)
        result = apply_plan(plan, workspace.providers, reporter, parallelism=parallelism, retry=retry, only=rest)
    return ApplyResult(outcomes + result.outcomes, result.interrupted), time.monotonic() - started


def _without(plan: Plan, address: str) -> Plan:
    return replace(
        plan,
        changes=tuple(c for c in plan.changes if c.address != address),
        fingerprints={a: f for a, f in plan.fingerprints.items() if a != address},
    )
