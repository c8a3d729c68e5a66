"""The GKE provider: gke.cluster and gke.node_pool over container v1, node pool sizes and the preflight over compute v1.

Clients come from the run's Clients, each built when first used: a plan that creates nothing never imports
google.cloud.compute_v1 (seconds), which only the preflight needs.
"""

from __future__ import annotations

import functools
from typing import Mapping, Sequence

from reconciler.engine.address import Address
from reconciler.engine.provider import Detail, Owned, Problem, Progress, Provider
from reconciler.engine.resource import Change, Hazard, Observed, Resource
from reconciler.providers.gke import addresses, cluster, node_pool
from reconciler.providers.gke.operations import Operations
from reconciler.providers.gke.preflight import Preflight, quota_claims
from reconciler.providers.gke.resources import DEFAULT_POOL, cluster_name
from reconciler.providers.ownership import owner
from reconciler.providers.parallel import observe_each


class GkeProvider(Provider):
    kinds = frozenset({addresses.CLUSTER, addresses.NODE_POOL})

    def __init__(self, clients):
        """clients: the run's Clients (gke, gke_instance_groups, compute_machine_types, compute_regions, project and
        the spec, whose cluster's pools owned() lists)."""
        self._clients = clients

    @functools.cached_property
    def _clusters(self) -> cluster.Clusters:
        return cluster.Clusters(self._clients.gke, self._clients.gke_instance_groups, self._operations)

    @functools.cached_property
    def _pools(self) -> node_pool.NodePools:
        return node_pool.NodePools(self._clients.gke, self._clients.gke_instance_groups, self._operations)

    @functools.cached_property
    def _operations(self) -> Operations:
        return Operations(self._clients.gke)

    def observe(self, desired: Sequence[Resource]) -> Mapping[str, Observed | None]:
        """One get per object (a cluster's own read carries its CPU pool), and one instance group read per pool."""
        return observe_each(desired, lambda resource: self._kind(resource.kind).observe(resource), "gke-observe")

    def diff(self, desired: Resource, observed: Observed | None) -> Change:
        return (cluster.diff if desired.kind == addresses.CLUSTER else node_pool.diff)(desired, observed)

    def modelled(self, desired: Resource, applied: Resource | None) -> Observed | None:
        """The cluster of that name in the project (observe finds it at another location too), the pool at its path."""
        if desired.kind == addresses.CLUSTER:
            same = applied is not None and (applied.name, applied.params["project"]) == \
                (desired.name, desired.params["project"])
            return cluster.modelled(desired.address, applied) if same else None
        same = applied is not None and applied.remote_id == desired.remote_id
        return node_pool.modelled(desired.address, applied) if same else None

    def left_behind(self, applied: Resource) -> Owned | None:
        if applied.kind == addresses.CLUSTER:
            resource = Resource(applied.address, applied.kind, applied.name, {},
                                params={"project": applied.params["project"]}, remote_id=applied.remote_id)
            return Owned(resource, cluster.modelled(applied.address, applied))
        resource = Resource(applied.address, applied.kind, applied.name, {}, inside=applied.inside,
                            remote_id=applied.remote_id)
        return Owned(resource, node_pool.modelled(applied.address, applied))

    def apply(self, change: Change, progress: Progress) -> Observed | None:
        return self._kind(change.kind).apply(change, progress)

    def hazard(self, change: Change, going_inside: Sequence[str]) -> Hazard | None:
        """Replacing a cluster or a slice, or pruning one that left the spec, stops what runs there: it needs the
        user's yes by name. A destroy's deletes are said, not blocked: destroying is what was asked."""
        return (cluster.hazard if change.kind == addresses.CLUSTER else node_pool.hazard)(change)

    def claims(self, change: Change) -> frozenset[str]:
        return quota_claims(change)

    def describe(self, changes: Sequence[Change]) -> Sequence[Detail]:
        """The nodes each existing cluster (its CPU nodes) and pool has, as read by the plan."""
        details = []
        for change in changes:
            if change.observed is None:
                continue
            fields = change.observed.fields
            nodes = (fields.get("cpuNodes") or {}).get("nodeCount") if change.kind == addresses.CLUSTER \
                else fields.get("nodeCount")
            if nodes is not None:
                details.append(Detail(change.address, f"{nodes} node{'' if nodes == 1 else 's'}"))
        return details

    def preflight(self, changes: Sequence[Change]) -> Sequence[Problem]:
        return Preflight(self._clients.project, lambda: self._clients.compute_machine_types,
                         lambda: self._clients.compute_regions).problems(changes)

    def owned(self, spec_name: str, kinds: frozenset[str], known: Mapping[Address, Observed]) -> Sequence[Owned]:
        """This spec's clusters anywhere in the project (one list call, made for a spec without a `cluster:` section
        too: a removed section's cluster is pruned), and the TPU pools of the spec's cluster (the pools of a pruned
        cluster go with it)."""
        project = self._clients.project
        spec_cluster = self._clients.spec.cluster
        found: list[Owned] = []
        for live in self._clusters.list(project):
            if owner(dict(live.resource_labels)) != spec_name:
                continue
            address = addresses.cluster(live.name)
            path = cluster_name(project, live.location, live.name)
            if addresses.CLUSTER in kinds:
                resource = Resource(address, addresses.CLUSTER, live.name, {}, params={"project": project},
                                    remote_id=path)
                found.append(Owned(resource, cluster.observed_cluster(address, project, live, None)))
            ours = spec_cluster is not None and (live.name, live.location) == (spec_cluster.name, spec_cluster.location)
            if ours and addresses.NODE_POOL in kinds:
                found.extend(_owned_pool(address, path, pool) for pool in live.node_pools
                             if pool.name != DEFAULT_POOL and owner(dict(pool.config.resource_labels)) == spec_name)
        return found

    def _kind(self, kind: str):
        return self._clusters if kind == addresses.CLUSTER else self._pools


def _owned_pool(cluster_address: Address, cluster_path: str, pool) -> Owned:
    address = addresses.node_pool(pool.name)
    path = f"{cluster_path}/nodePools/{pool.name}"
    resource = Resource(address, addresses.NODE_POOL, pool.name, {}, inside=cluster_address, remote_id=path)
    return Owned(resource, node_pool.observed_pool(address, cluster_path, pool, None))
