"""GKE TPU machine types and the slice shapes each serves: checks a pool's machine type ↔ topology ↔ nodes."""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

from reconciler.spec.model import TpuPool

# As the schema's pattern: up to three digits a side (the largest slices are 16x20x28), so sizes stay small numbers.
_TOPOLOGY = re.compile(r"[1-9][0-9]{0,2}(x[1-9][0-9]{0,2}){1,2}")
# Multi-host slices GKE offers for v5e and v6e, built from 4-chip hosts (GKE "Plan TPUs" tables).
_MULTI_HOST_2D = ("2x4", "4x4", "4x8", "8x8", "8x16", "16x16")


@dataclass(frozen=True, slots=True)
class TpuMachine:
    """One TPU machine type: what GKE labels its nodes with and the slices it can form."""

    machine_type: str
    generation: str  # v5e, v6e, v5p, v4
    accelerator: str  # value of the node label cloud.google.com/gke-tpu-accelerator
    chips_per_node: int
    dimensions: int  # 2 for v5e/v6e topologies (2x2), 3 for v4/v5p (2x2x1)
    single_host: tuple[str, ...]  # topologies one node of this type forms by itself
    multi_host: tuple[str, ...]  # 2-D multi-host topologies; 3-D generations take any multiple of a host


def _two_d(machine_type: str, generation: str, accelerator: str, chips: int) -> TpuMachine:
    single = {1: ("1x1",), 4: ("2x2",), 8: ("2x4",)}[chips]
    # Only the 4-chip hosts join into multi-host slices.
    return TpuMachine(machine_type, generation, accelerator, chips, 2, single, _MULTI_HOST_2D if chips == 4 else ())


def _three_d(machine_type: str, generation: str, accelerator: str) -> TpuMachine:
    return TpuMachine(machine_type, generation, accelerator, 4, 3, ("2x2x1",), ())


TPU_MACHINES: dict[str, TpuMachine] = {
    machine.machine_type: machine
    for machine in (
        _two_d("ct5lp-hightpu-1t", "v5e", "tpu-v5-lite-podslice", 1),
        _two_d("ct5lp-hightpu-4t", "v5e", "tpu-v5-lite-podslice", 4),
        _two_d("ct5lp-hightpu-8t", "v5e", "tpu-v5-lite-podslice", 8),
        _two_d("ct6e-standard-1t", "v6e", "tpu-v6e-slice", 1),
        _two_d("ct6e-standard-4t", "v6e", "tpu-v6e-slice", 4),
        _two_d("ct6e-standard-8t", "v6e", "tpu-v6e-slice", 8),
        _three_d("ct5p-hightpu-4t", "v5p", "tpu-v5p-slice"),
        _three_d("ct4p-hightpu-4t", "v4", "tpu-v4-podslice"),
    )
}


@dataclass(frozen=True, slots=True)
class TpuSlice:
    """What a valid pool provides: the node selector values and the google.com/tpu count per node."""

    machine_type: str
    accelerator: str  # cloud.google.com/gke-tpu-accelerator
    topology: str  # cloud.google.com/gke-tpu-topology
    chips_per_node: int  # the google.com/tpu request and limit of a pod on one node
    total_chips: int  # chips in the whole slice
    nodes: int

    @property
    def multi_host(self) -> bool:
        return self.nodes > 1


def tpu_slice(pool: TpuPool) -> TpuSlice:
    """The slice a validated pool forms; KeyError for a machine type load_spec would have refused."""
    machine = TPU_MACHINES[pool.machine_type]
    return TpuSlice(
        machine_type=machine.machine_type,
        accelerator=machine.accelerator,
        topology=pool.topology,
        chips_per_node=machine.chips_per_node,
        total_chips=topology_chips(pool.topology),
        nodes=pool.nodes,
    )


def is_topology(text: str) -> bool:
    """Whether text is written like a topology (2x2, 2x2x1), whatever the machine."""
    return _TOPOLOGY.fullmatch(text) is not None


def topology_chips(topology: str) -> int:
    return math.prod(int(size) for size in topology.split("x"))


def pool_problems(machine_type: str, topology: str, nodes: int) -> list[tuple[str, str]]:
    """(pool field, message) for each disagreement between machine type, topology and node count."""
    machine = TPU_MACHINES.get(machine_type)
    if machine is None:
        return [("machineType", _unknown_machine(machine_type))]
    if not is_topology(topology):
        return []  # the schema has reported it
    topology_problem = _topology_problem(machine, topology)
    if topology_problem:
        return [("topology", topology_problem)]
    chips = topology_chips(topology)
    needed_nodes = chips // machine.chips_per_node
    if nodes != needed_nodes:
        message = (f"topology {topology} needs {chips} chips: {machine_type} has {machine.chips_per_node} per node, "
                   f"so nodes must be {needed_nodes}, not {nodes}")
        single_host_machine = _single_host_machine(machine, topology)
        if single_host_machine and nodes == 1:
            message += f" (or {topology} on a single host needs {single_host_machine.machine_type})"
        return [("nodes", message)]
    return []


def _unknown_machine(machine_type: str) -> str:
    known = sorted(TPU_MACHINES)
    close = difflib.get_close_matches(machine_type, known, n=1, cutoff=0.8)
    hint = f" (did you mean '{close[0]}'?)" if close else f"; known: {', '.join(known)}"
    return f"unknown TPU machine type '{machine_type}'{hint}"


def _topology_problem(machine: TpuMachine, topology: str) -> str | None:
    sizes = topology.split("x")
    name = f"{machine.machine_type} (TPU {machine.generation})"
    if len(sizes) != machine.dimensions:
        example = machine.single_host[-1]
        return f"topology {topology} is {len(sizes)}-D, but {name} takes a {machine.dimensions}-D topology like {example}"
    if machine.dimensions == 3:
        return _three_d_problem(machine, topology)
    if topology in machine.single_host or topology in machine.multi_host:
        return None
    other = _single_host_machine(machine, topology) or _multi_host_machine(machine, topology)
    if other is not None:
        nodes = topology_chips(topology) // other.chips_per_node
        shape = "on a single host" if nodes == 1 else f"on {nodes} hosts"
        return f"{topology} {shape} needs {other.machine_type}, not {_short(machine.machine_type, other.machine_type)}"
    offered = sorted({shape for other in _generation(machine) for shape in other.single_host + other.multi_host},
                     key=topology_chips)
    return f"topology {topology} is not offered for TPU {machine.generation}; use one of {', '.join(offered)}"


def _three_d_problem(machine: TpuMachine, topology: str) -> str | None:
    chips = topology_chips(topology)
    if chips % machine.chips_per_node:
        return (f"topology {topology} has {chips} chip{'s' if chips > 1 else ''}; {machine.machine_type} slices come in multiples of "
                f"{machine.chips_per_node} chips (2x2x1, 2x2x2, 2x2x4, ...)")
    if chips == machine.chips_per_node and topology not in machine.single_host:
        return f"a single-host {machine.machine_type} slice is written {machine.single_host[0]}, not {topology}"
    return None


def _generation(machine: TpuMachine) -> list[TpuMachine]:
    return [other for other in TPU_MACHINES.values() if other.generation == machine.generation]


def _single_host_machine(machine: TpuMachine, topology: str) -> TpuMachine | None:
    return next((other for other in _generation(machine) if topology in other.single_host and other != machine), None)


def _multi_host_machine(machine: TpuMachine, topology: str) -> TpuMachine | None:
    return next((other for other in _generation(machine) if topology in other.multi_host and other != machine), None)


def _short(machine_type: str, other_type: str) -> str:
    """ct5lp-hightpu-4t beside ct5lp-hightpu-8t reads as -4t: only the part that differs."""
    prefix, _, suffix = machine_type.rpartition("-")
    return f"-{suffix}" if other_type.startswith(prefix + "-") else machine_type
