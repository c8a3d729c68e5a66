"""The dependency graph of desired resources: validation, cycles reported by name, order, and --target closure."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from reconciler.engine.resource import Address, Resource
from reconciler.errors import SaxctlError


class GraphError(SaxctlError):
    """The resources do not form a valid DAG (a bug in how the spec became resources, or a bad --target)."""


class Graph:
    def __init__(self, resources: Sequence[Resource]):
        self.resources: dict[Address, Resource] = {}
        for resource in resources:
            if resource.address in self.resources:
                raise GraphError(f"two resources share the address {resource.address}")
            self.resources[resource.address] = resource
        for resource in resources:
            for dependency in resource.depends_on:
                if dependency not in self.resources:
                    raise GraphError(f"{resource.address} depends on {dependency}, which is not in the spec")
        self.order: tuple[Address, ...] = _topological_order(
            {address: resource.depends_on for address, resource in self.resources.items()}
        )

    def dependencies(self, address: Address) -> tuple[Address, ...]:
        return self.resources[address].depends_on

    def dependents(self, address: Address) -> tuple[Address, ...]:
        return tuple(other for other in self.order if address in self.resources[other].depends_on)

    def closure(self, targets: Iterable[Address]) -> set[Address]:
        """The targets and everything they depend on, transitively (Terraform's -target semantics)."""
        wanted: set[Address] = set()
        pending = list(targets)
        for target in pending:
            if target not in self.resources:
                known = ", ".join(self.order) or "none"
                raise GraphError(f"--target {target} is not an address of this spec (addresses: {known})")
        while pending:
            address = pending.pop()
            if address not in wanted:
                wanted.add(address)
                pending.extend(self.resources[address].depends_on)
        return wanted


def _topological_order(edges: Mapping[Address, Sequence[Address]]) -> tuple[Address, ...]:
    """Dependencies first; ties broken by address so plans are stable. Raises GraphError naming a cycle."""
    order: list[Address] = []
    state: dict[Address, str] = {}  # "visiting" | "done"
    stack: list[Address] = []

    def visit(address: Address) -> None:
        if state.get(address) == "done":
            return
        if state.get(address) == "visiting":
            cycle = stack[stack.index(address):] + [address]
            raise GraphError("dependency cycle: " + " → ".join(cycle))
        state[address] = "visiting"
        stack.append(address)
        for dependency in sorted(edges[address]):
            visit(dependency)
        stack.pop()
        state[address] = "done"
        order.append(address)

    for address in sorted(edges):
        visit(address)
    return tuple(order)
