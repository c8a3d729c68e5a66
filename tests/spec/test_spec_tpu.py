"""The TPU tables: every shape GKE offers is accepted with the right node count, and tpu_slice describes it."""

from __future__ import annotations

import pytest

from reconciler.spec.model import TpuPool
from reconciler.spec.tpu import TPU_MACHINES, pool_problems, topology_chips, tpu_slice

# (machine type, topology, nodes) GKE offers, from its TPU planning tables.
VALID_POOLS = [
    ("ct5lp-hightpu-1t", "1x1", 1),
    ("ct5lp-hightpu-4t", "2x2", 1),
    ("ct5lp-hightpu-8t", "2x4", 1),
    ("ct5lp-hightpu-4t", "2x4", 2),
    ("ct5lp-hightpu-4t", "4x4", 4),
    ("ct5lp-hightpu-4t", "4x8", 8),
    ("ct5lp-hightpu-4t", "8x8", 16),
    ("ct5lp-hightpu-4t", "8x16", 32),
    ("ct5lp-hightpu-4t", "16x16", 64),
    ("ct6e-standard-1t", "1x1", 1),
    ("ct6e-standard-4t", "2x2", 1),
    ("ct6e-standard-8t", "2x4", 1),
    ("ct6e-standard-4t", "16x16", 64),
    ("ct5p-hightpu-4t", "2x2x1", 1),
    ("ct5p-hightpu-4t", "2x2x2", 2),
    ("ct5p-hightpu-4t", "2x4x4", 8),
    ("ct5p-hightpu-4t", "4x4x8", 32),
    ("ct4p-hightpu-4t", "2x2x1", 1),
    ("ct4p-hightpu-4t", "2x2x4", 4),
    ("ct4p-hightpu-4t", "4x4x4", 16),
]


@pytest.mark.parametrize("machine_type, topology, nodes", VALID_POOLS, ids=lambda value: str(value))
def test_offered_shapes_are_accepted(machine_type, topology, nodes):
    assert pool_problems(machine_type, topology, nodes) == []


@pytest.mark.parametrize("machine_type, topology, nodes", VALID_POOLS, ids=lambda value: str(value))
def test_one_node_more_or_less_is_refused_on_the_nodes_field(machine_type, topology, nodes):
    for wrong in (nodes - 1, nodes + 1):
        problems = pool_problems(machine_type, topology, wrong)
        assert [field for field, _ in problems] == ["nodes"]
        assert f"so nodes must be {nodes}, not {wrong}" in problems[0][1]


def test_the_brief_messages():
    assert pool_problems("ct5lp-hightpu-4t", "2x4", 1) == [(
        "nodes", "topology 2x4 needs 8 chips: ct5lp-hightpu-4t has 4 per node, so nodes must be 2, not 1 "
                 "(or 2x4 on a single host needs ct5lp-hightpu-8t)")]
    assert pool_problems("ct5lp-hightpu-1t", "2x4", 1) == [
        ("topology", "2x4 on a single host needs ct5lp-hightpu-8t, not -1t")]


def test_every_machine_has_a_gke_accelerator_label():
    accelerators = {machine.generation: machine.accelerator for machine in TPU_MACHINES.values()}
    assert accelerators == {"v5e": "tpu-v5-lite-podslice", "v6e": "tpu-v6e-slice", "v5p": "tpu-v5p-slice",
                            "v4": "tpu-v4-podslice"}


def test_tpu_slice_gives_what_the_kubernetes_provider_needs():
    single = tpu_slice(TpuPool(name="tpu", machine_type="ct5lp-hightpu-4t", topology="2x2", nodes=1))
    assert (single.accelerator, single.topology, single.chips_per_node, single.total_chips, single.multi_host) == (
        "tpu-v5-lite-podslice", "2x2", 4, 4, False)
    multi = tpu_slice(TpuPool(name="tpu", machine_type="ct5lp-hightpu-4t", topology="4x8", nodes=8))
    assert (multi.chips_per_node, multi.total_chips, multi.nodes, multi.multi_host) == (4, 32, 8, True)
    v5p = tpu_slice(TpuPool(name="tpu", machine_type="ct5p-hightpu-4t", topology="2x2x2", nodes=2))
    assert (v5p.accelerator, v5p.total_chips) == ("tpu-v5p-slice", 8)


def test_topology_chips():
    assert [topology_chips(topology) for topology in ("1x1", "2x2", "2x4", "16x16", "2x2x1", "4x4x8")] == [
        1, 4, 8, 256, 4, 128]
