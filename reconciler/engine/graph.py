"""The dependency graph of desired resources: validation, cycles reported by name, order, and --target closure.

Edges come from `depends_on`, `inside` and every Ref in a resource's fields or params: a value that flows from one
resource to another is a dependency whether or not the provider also listed it.
"""

from __future__ import annotations

import graphlib
from typing import Iterable, Sequence

from reconciler.engine.address import Address
from reconciler.engine.resource import Resource, refs_in
from reconciler.errors import SaxctlError


class GraphError(SaxctlError):
    """The resources do not form a valid DAG (a bug in how the spec became resources, or a bad --target)."""


def parents_of(resource: Resource) -> tuple[Address, ...]:
    flowing = refs_in(resource.fields) | refs_in(resource.params)
    return resource.parents + tuple(sorted(flowing - set(resource.parents)))


class Graph:
    def __init__(self, resources: Sequence[Resource]):
        self.resources: dict[Address, Resource] = {}
        for resource in resources:
            if resource.address in self.resources:
                raise GraphError(f"two resources share the address {resource.address}")
            self.resources[resource.address] = resource
        self.parents: dict[Address, tuple[Address, ...]] = {}
        for resource in resources:
            for parent in parents_of(resource):
                if parent not in self.resources:
                    raise GraphError(f"{resource.address} depends on {parent}, which is not in the spec")
            self.parents[resource.address] = parents_of(resource)
        self.order: tuple[Address, ...] = topological_order(self.parents)

    def dependents(self, address: Address) -> tuple[Address, ...]:
        return tuple(other for other in self.order if address in self.parents[other])

    def closure(self, targets: Iterable[Address], *, destroy: bool = False) -> set[Address]:
        """The targets and what they need, transitively (Terraform's -target).

        Applying a target needs what it depends on; destroying one takes what depends on it with it, and never
        what it depends on.
        """
        pending = list(targets)
        wanted: set[Address] = set()
        while pending:
            address = pending.pop()
            if address not in wanted:
                wanted.add(address)
                pending.extend(self.dependents(address) if destroy else self.parents[address])
        return wanted


def topological_order(parents: dict[Address, Sequence[Address]]) -> tuple[Address, ...]:
    """Parents first; ties broken by address so plans are stable. Raises GraphError naming a cycle."""
    return tuple(address for group in levels(parents) for address in group)


def levels(parents: dict[Address, Sequence[Address]]) -> list[list[Address]]:
    """Addresses grouped so that each group's parents are all in earlier groups (the order of observation)."""
    sorter = graphlib.TopologicalSorter({address: sorted(parents[address]) for address in sorted(parents)})
    try:
        sorter.prepare()
    except graphlib.CycleError as error:
        cycle = list(reversed(error.args[1]))
        raise GraphError("dependency cycle: " + " → ".join(cycle)) from None
    groups: list[list[Address]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        groups.append(ready)
        sorter.done(*ready)
    return groups
