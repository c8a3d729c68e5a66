"""The critical path and the sequential sum of an apply's steps along the plan's own dependency graph.

The graph is the one the apply walks: the plan's actionable changes, each waiting for its parents among them
(reconciler.engine.graph.parents_of). The critical path is the longest chain of step costs along it, the least an
apply with unbounded parallelism can take; the sequential sum is every step one after another, as the tutorial's
commands run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Step:
    address: str
    kind: str
    parents: tuple[str, ...]  # among the plan's actionable changes


@dataclass(frozen=True)
class Paths:
    critical_seconds: float
    sequential_seconds: float
    chain: tuple[str, ...]  # the steps of the critical path, first to last


def plan_steps(spec: Path, env: Mapping[str, str]) -> list[Step]:
    """The actionable changes of a fresh plan of spec (made in this process, against env's endpoints)."""
    os.environ.update(env)
    from reconciler import runner
    from reconciler.engine.graph import parents_of

    plan = runner.make_plan(runner.open_workspace(str(spec)))
    actionable = {change.address: change for change in plan.actionable}
    return [Step(address, change.kind, tuple(parent for parent in parents_of(change.desired) if parent in actionable))
            for address, change in actionable.items() if change.desired is not None]


def paths(steps: list[Step], cost: Mapping[str, float]) -> Paths:
    """The longest chain of cost along the steps' dependencies, and the sum of every step's cost."""
    from reconciler.engine.graph import topological_order

    by_address = {step.address: step for step in steps}
    finish: dict[str, float] = {}
    after: dict[str, str | None] = {}  # the parent each step's longest chain comes through
    for address in topological_order({step.address: step.parents for step in steps}):
        parent = max(by_address[address].parents, key=finish.__getitem__, default=None)
        finish[address] = (finish[parent] if parent else 0.0) + cost[address]
        after[address] = parent
    last: str | None = max(finish, key=finish.__getitem__)
    chain = []
    while last is not None:
        chain.append(last)
        last = after[last]
    return Paths(round(max(finish.values()), 3), round(sum(cost.values()), 3), tuple(reversed(chain)))
