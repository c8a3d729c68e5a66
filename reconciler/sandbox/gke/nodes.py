"""The Kubernetes Nodes a GKE node pool stands for, and the sink that makes them exist on the Kubernetes side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from reconciler.sandbox.base.ids import hex_id
from reconciler.sandbox.compute import catalog
from reconciler.spec.tpu import TPU_MACHINES

# GKE's taint on every TPU node, so that only pods asking for google.com/tpu land there.
TPU_TAINT = {"key": "google.com/tpu", "value": "present", "effect": "NoSchedule"}
_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}
_DEFAULT_MAX_PODS = "110"


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str  # e.g. gke-saxml-tpu-1a2b3c4d-0: stable per cluster, pool, zone and index
    labels: Mapping[str, str]  # GKE's node labels (pool, TPU accelerator and topology, instance type, zone...)
    taints: tuple[Mapping[str, str], ...]  # core/v1 Taint dicts
    capacity: Mapping[str, str]  # cpu, memory, pods, ephemeral-storage, and google.com/tpu on TPU nodes


class NodeSink(Protocol):
    def sync(self, cluster: str, pool: str, nodes: Sequence[NodeSpec]) -> None:
        """Make this pool's Nodes exactly `nodes` (create missing, delete extra; [] when the pool goes).

        `cluster` is the cluster's resource name, projects/P/locations/L/clusters/C.
        """


class NoNodeSink:
    """The default: nothing on the Kubernetes side (the nodes are still listed at GET /_sandbox/nodes)."""

    def sync(self, cluster: str, pool: str, nodes: Sequence[NodeSpec]) -> None:
        return None


def pool_nodes(cluster_name: str, pool: Mapping, nodes_per_zone: int) -> list[NodeSpec]:
    """The nodes of a pool with `nodes_per_zone` nodes in each of its zones (cluster_name: the cluster's id)."""
    config = pool.get("config", {})
    machine_type = config.get("machineType", "")
    shape = catalog.MACHINES.get(machine_type)
    tpu = TPU_MACHINES.get(machine_type)
    topology = pool.get("placementPolicy", {}).get("tpuTopology") or (tpu.single_host[0] if tpu else "")
    base_labels = {
        "cloud.google.com/gke-nodepool": pool["name"],
        "cloud.google.com/gke-os-distribution": "cos",
        "cloud.google.com/gke-container-runtime": "containerd",
        "cloud.google.com/gke-boot-disk": config.get("diskType", "pd-balanced"),
        "cloud.google.com/machine-family": machine_type.split("-", 1)[0],
        "node.kubernetes.io/instance-type": machine_type,
        "beta.kubernetes.io/instance-type": machine_type,
        "kubernetes.io/os": "linux", "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64", "beta.kubernetes.io/arch": "amd64",
        **config.get("labels", {}),
    }
    if tpu is not None:
        base_labels["cloud.google.com/gke-tpu-accelerator"] = tpu.accelerator
        base_labels["cloud.google.com/gke-tpu-topology"] = topology
    taints = tuple({"key": taint["key"], "value": taint.get("value", ""), "effect": _EFFECTS[taint["effect"]]}
                   for taint in config.get("taints", ()))
    if tpu is not None:
        taints = (TPU_TAINT, *taints)
    capacity = {"pods": pool.get("maxPodsConstraint", {}).get("maxPodsPerNode", _DEFAULT_MAX_PODS),
                "ephemeral-storage": f"{config.get('diskSizeGb', 100)}Gi"}
    if shape is not None:
        capacity.update(cpu=str(shape.guest_cpus), memory=f"{shape.memory_mb * 1024}Ki")
    if tpu is not None:
        capacity["google.com/tpu"] = str(tpu.chips_per_node)
    nodes = []
    for zone in pool.get("locations", ()):
        zone_labels = {**base_labels, "topology.kubernetes.io/zone": zone,
                       "topology.kubernetes.io/region": catalog.region_of(zone),
                       "failure-domain.beta.kubernetes.io/zone": zone,
                       "failure-domain.beta.kubernetes.io/region": catalog.region_of(zone)}
        prefix = instance_group_name(cluster_name, pool["name"], zone).removesuffix("-grp")
        for index in range(nodes_per_zone):
            name = f"{prefix}-{index}"
            nodes.append(NodeSpec(name, {**zone_labels, "kubernetes.io/hostname": name}, taints, dict(capacity)))
    return nodes


def instance_group_name(cluster_name: str, pool_name: str, zone: str) -> str:
    """gke-CLUSTER-POOL-HASH-grp, the managed instance group of a pool in one zone (names cut to stay a DNS label)."""
    cluster_part = cluster_name.split("/")[-1][:20].rstrip("-")
    pool_part = pool_name[:20].rstrip("-")
    return f"gke-{cluster_part}-{pool_part}-{hex_id(cluster_name, pool_name, zone)}-grp"
