"""gke.cluster and gke.node_pool from the spec: the fields saxctl owns, in the same normal form observe() reads back.

The cluster owns its CPU nodes (GKE's first pool, named default-pool as gcloud names it); each TPU slice is a
gke.node_pool living inside the cluster. A field path in `replace_on` cannot change in place at the API.
"""

from __future__ import annotations

from typing import Any

from reconciler.engine.resource import Resource
from reconciler.providers.gke import addresses
from reconciler.providers.ownership import mark
from reconciler.spec import names, tpu
from reconciler.spec.model import CPU_POOL, Cluster, Spec, TpuPool

DEFAULT_POOL = CPU_POOL  # the CPU nodes: the pool a cluster is created with
# Deadlines of one change, polls and retries included. GKE's own: a zonal create takes 5-10 min, a regional one up to
# 30; a replacement is a delete and a create under one deadline.
CLUSTER_TIMEOUT_S = 60 * 60.0
NODE_POOL_TIMEOUT_S = 40 * 60.0
CLUSTER_REPLACE_ON = frozenset({"location"})
# A TPU slice's shape is its machine type, topology, placement and zone: GKE changes none of them in place.
POOL_REPLACE_ON = frozenset({"machineType", "tpuTopology", "placement", "zone"})


def cluster_name(project: str, location: str, cluster: str) -> str:
    return f"projects/{project}/locations/{location}/clusters/{cluster}"


def workload_pool(project: str) -> str:
    return f"{project}.svc.id.goog"


def desired_resources(spec: Spec) -> list[Resource]:
    if spec.cluster is None:
        return []
    cluster = _cluster(spec, spec.cluster)
    return [cluster] + [_node_pool(spec, spec.cluster, pool, index, cluster)
                        for index, pool in enumerate(spec.cluster.tpu_pools)]


def is_zonal(location: str) -> bool:
    return names.zone_region(location) is not None


def region_of(location: str) -> str:
    return names.zone_region(location) or location


def _cluster(spec: Spec, cluster: Cluster) -> Resource:
    return Resource(
        address=addresses.cluster(cluster.name),
        kind=addresses.CLUSTER,
        name=cluster.name,
        fields={
            "location": cluster.location,
            "releaseChannel": cluster.release_channel,
            "workloadPool": workload_pool(spec.project.id),
            "resourceLabels": mark(spec.name),
            "cpuNodes": {"machineType": cluster.cpu_nodes.machine_type, "nodeCount": cluster.cpu_nodes.count},
        },
        replace_on=CLUSTER_REPLACE_ON,
        params={"project": spec.project.id},
        spec_field="cluster",
        timeout_s=CLUSTER_TIMEOUT_S,
        remote_id=cluster_name(spec.project.id, cluster.location, cluster.name),
    )


def _node_pool(spec: Spec, cluster: Cluster, pool: TpuPool, index: int, parent: Resource) -> Resource:
    fields: dict[str, Any] = {
        # A slice lives in one zone: a zonal cluster's, or the pool's own in a regional one (the spec checks see to it).
        "zone": cluster.location if is_zonal(cluster.location) else pool.zone,
        "machineType": pool.machine_type,
        "tpuTopology": pool.topology,
        "nodeCount": pool.nodes,
        "resourceLabels": mark(spec.name),
    }
    if tpu.tpu_slice(pool).multi_host:
        fields["placement"] = "COMPACT"  # the hosts of a multi-host slice sit together, as GKE requires
    return Resource(
        address=addresses.node_pool(pool.name),
        kind=addresses.NODE_POOL,
        name=pool.name,
        fields=fields,
        inside=parent.address,
        replace_on=POOL_REPLACE_ON,
        params={"project": spec.project.id, "location": cluster.location, "cluster": cluster.name},
        spec_field=f"cluster.tpuPools[{index}]",
        timeout_s=NODE_POOL_TIMEOUT_S,
        remote_id=f"{parent.remote_id}/nodePools/{pool.name}",
    )
