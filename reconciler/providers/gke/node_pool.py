"""gke.node_pool: one TPU slice, a GKE node pool (container v1) inside the cluster, read, compared and changed.

What saxctl owns: the slice's shape (machine type, topology, COMPACT placement for a multi-host slice, zone: none of
them changes in place), its node count (resized in place, unless an autoscaler decides it) and its ownership labels
(NodeConfig.resourceLabels). A body the spec's checks would refuse is never sent.
"""

from __future__ import annotations

from reconciler.engine.provider import Progress
from reconciler.engine.resource import Action, Change, Hazard, Observed, Resource
from reconciler.errors import ConflictError, RemoteError, SaxctlError
from reconciler.providers.gke import addresses
from reconciler.providers.gke.diffs import ERROR, PROVISIONING, STOPPING, changed_paths, compare
from reconciler.providers.gke.kind import ObjectKind
from reconciler.providers.gke.operations import TIMEOUT, ClusterAt, Where, unless_exists, unless_gone
from reconciler.providers.gke.resources import region_of
from reconciler.providers.google_retry import idempotent
from reconciler.providers.ownership import SPEC_LABEL, owner
from reconciler.spec import names, tpu

NOUN = "node pool"
_SIZED = ("RUNNING", "RECONCILING", "RUNNING_WITH_ERROR")  # statuses whose instance groups are there


def diff(desired: Resource, observed: Observed | None) -> Change:
    owned = desired.fields
    if observed is not None and observed.facts.get("autoscaled"):  # the autoscaler decides the count
        owned = {key: value for key, value in owned.items() if key != "nodeCount"}
    return compare(desired, observed, noun=NOUN, owned=owned)


def observed_pool(address: str, cluster_path: str, pool, node_count) -> Observed:
    """The live pool in the normal form of gke.resources; node_count from its instance groups."""
    placement = pool.placement_policy
    locations = list(pool.locations)
    fields = {
        "zone": locations[0] if len(locations) == 1 else locations,
        "machineType": pool.config.machine_type,
        "tpuTopology": placement.tpu_topology or None,
        "placement": placement.type_.name if placement.type_ else None,
        "nodeCount": node_count,
        "resourceLabels": dict(pool.config.resource_labels),
    }
    facts = {"status": pool.status.name, "status_message": pool.status_message,
             "autoscaled": bool(pool.autoscaling.enabled), "initial_node_count": pool.initial_node_count}
    return _pool_observed(address, f"{cluster_path}/nodePools/{pool.name}", fields, facts,
                          f"etag {pool.etag}, {pool.status.name}, {node_count} node(s)")


def modelled(address: str, applied: Resource) -> Observed:
    """The pool applying `applied` leaves: running, with the nodes asked for."""
    fields = {"placement": None, **applied.fields}
    facts = {"status": "RUNNING", "status_message": "", "autoscaled": False,
             "initial_node_count": fields["nodeCount"]}
    return _pool_observed(address, applied.remote_id, fields, facts, "etag (not read: offline)")


def _pool_observed(address: str, path: str, fields: dict, facts: dict, fingerprint: str) -> Observed:
    return Observed(address=address, remote_id=path, fields=fields, fingerprint=fingerprint,
                    owner=owner(fields["resourceLabels"]), facts=facts, outputs={"name": path})


def node_pool_body(resource: Resource):
    """The NodePool to create, refused here if the spec's own checks would refuse its shape."""
    from google.cloud import container_v1

    fields = resource.fields
    problems = tpu.pool_problems(fields["machineType"], fields["tpuTopology"], fields["nodeCount"])
    if problems or names.zone_region(fields["zone"] or "") is None:
        found = "; ".join(f"{field}: {message}" for field, message in problems) or f"zone {fields['zone']!r}"
        raise SaxctlError(f"{resource.address}: refusing to send a node pool the spec checks refuse ({found})",
                          hint="Plan again from the spec; a saved plan must not be edited.")
    placement = container_v1.NodePool.PlacementPolicy(tpu_topology=fields["tpuTopology"])
    if fields.get("placement"):
        placement.type_ = container_v1.NodePool.PlacementPolicy.Type[fields["placement"]]
    return container_v1.NodePool(
        name=resource.name, initial_node_count=fields["nodeCount"], locations=[fields["zone"]],
        config=container_v1.NodeConfig(machine_type=fields["machineType"],
                                       resource_labels=dict(fields["resourceLabels"])),
        placement_policy=placement,
    )


def hazard(change: Change) -> Hazard | None:
    observed = change.observed
    what = f"node pool {observed.remote_id}"
    status = observed.facts.get("status")
    if status == STOPPING:
        return Hazard(f"{what} is already being deleted", needs_approval=False)
    if status == ERROR:  # a create that failed (a stockout, a quota): nothing runs there to lose
        return Hazard(f"{what} is in ERROR; deleting it loses no working node", needs_approval=False)
    fields = observed.fields
    nodes = fields.get("nodeCount")
    nodes = observed.facts.get("initial_node_count") if nodes is None else nodes
    shape = f"{fields.get('machineType')} {fields.get('tpuTopology') or ''}".strip()
    return Hazard(f"deleting {what} ({shape}, {nodes} node(s)) stops every pod running on it (the model servers "
                  "of this TPU slice)", needs_approval=change.action is Action.REPLACE or change.pruned)


class NodePools(ObjectKind):
    def observe(self, resource: Resource) -> Observed | None:
        live = self.get(resource.remote_id)
        if live is None:
            return None
        return observed_pool(resource.address, ClusterAt.of(resource.remote_id).path, live, self.node_count(live))

    def read_again(self, resource: Resource):
        live = self.get(resource.remote_id)
        if live is None:
            return None, None
        return live, observed_pool(resource.address, ClusterAt.of(resource.remote_id).path, live,
                                   self.node_count(live))

    def get(self, path: str):
        from google.api_core.exceptions import NotFound

        def read():
            try:
                return self._client.get_node_pool(name=path, timeout=TIMEOUT, retry=None)
            except NotFound:
                return None

        return idempotent("container.projects.locations.clusters.nodePools.get", path, read)

    def node_count(self, pool):
        if pool.status.name not in _SIZED:
            return None
        return self._instance_groups.pool_size(pool)

    def create(self, resource: Resource, progress: Progress) -> Observed:
        """Create it, or wait for the create an earlier attempt started (the world is read first: never twice)."""
        at, where = ClusterAt.of(resource.remote_id), _where(resource)
        body = node_pool_body(resource)
        live = self.get(resource.remote_id)
        if live is not None and live.status.name == STOPPING:
            self._operations.resume(at, "DELETE_NODE_POOL", progress, resource.address, where, pool=resource.name)
            live = self.get(resource.remote_id)
        if live is None:
            progress.update(f"creating node pool {resource.remote_id}")
            self._operations.run(
                "container.projects.locations.clusters.nodePools.create", resource.remote_id,
                lambda: unless_exists(lambda: self._client.create_node_pool(parent=at.path, node_pool=body,
                                                                            timeout=TIMEOUT, retry=None)),
                at, progress, resource.address, where)
            live = self.get(resource.remote_id)
        if live is None:
            raise RemoteError(f"{resource.address}: {resource.remote_id} was created but cannot be read back")
        if owner(dict(live.config.resource_labels)) != resource.fields["resourceLabels"][SPEC_LABEL]:
            raise ConflictError(f"{resource.remote_id} was created meanwhile by someone else: saxctl did not change it",
                                hint="Run `saxctl plan` again to see it.")
        if live.status.name == PROVISIONING:
            self._operations.resume(at, "CREATE_NODE_POOL", progress, resource.address, where, pool=resource.name)
        elif live.status.name == ERROR:
            raise RemoteError(f"{resource.address}: {resource.remote_id} is in ERROR: "
                              f"{live.status_message or 'no message'}",
                              hint="Run `saxctl plan` again: it plans to delete it and create it again.")
        return self.observe(resource)

    def update(self, change: Change, progress: Progress) -> Observed:
        from google.cloud import container_v1

        resource = change.desired
        at, where = ClusterAt.of(resource.remote_id), _where(resource)
        paths = changed_paths(change)
        if "status" in paths:
            self._operations.resume(at, "CREATE_NODE_POOL", progress, resource.address, where, pool=resource.name)
        live = self.unmoved(change)
        # Re-read: a pool the plan saw still being created has its size now.
        if ("nodeCount" in paths and not live.autoscaling.enabled
                and self.node_count(live) != resource.fields["nodeCount"]):
            progress.update(f"resizing {resource.remote_id} to {resource.fields['nodeCount']} node(s)")

            def resize():  # setSize takes no etag: checked before each attempt, after waiting out another one too
                self.unmoved(change)
                return self._client.set_node_pool_size(request=container_v1.SetNodePoolSizeRequest(
                    name=resource.remote_id, node_count=resource.fields["nodeCount"]), timeout=TIMEOUT, retry=None)

            self._operations.run("container.projects.locations.clusters.nodePools.setSize", resource.remote_id,
                                 resize, at, progress, resource.address, where)
            live = self.unmoved(change)
        if "resourceLabels" in paths:
            # Labels saxctl does not set stay; node_version and image_type as they are (the API requires both).
            labels = {**dict(live.config.resource_labels), **resource.fields["resourceLabels"]}
            self._operations.run(
                "container.projects.locations.clusters.nodePools.update", resource.remote_id,
                lambda: self._client.update_node_pool(request=container_v1.UpdateNodePoolRequest(
                    name=resource.remote_id, node_version=live.version, image_type=live.config.image_type,
                    resource_labels=container_v1.ResourceLabels(labels=labels), etag=live.etag),
                    timeout=TIMEOUT, retry=None),
                at, progress, resource.address, where)
        return self.observe(resource)

    def delete(self, path: str, progress: Progress) -> None:
        at = ClusterAt.of(path)
        pool_name = path.rsplit("/", 1)[1]
        live = self.get(path)
        if live is None:
            return
        what = addresses.node_pool(pool_name)
        where = Where(",".join(live.locations), region_of(at.location), live.config.machine_type)
        if live.status.name == STOPPING:
            self._operations.resume(at, "DELETE_NODE_POOL", progress, what, where, pool=pool_name)
            return
        progress.update(f"deleting node pool {path}")
        self._operations.run("container.projects.locations.clusters.nodePools.delete", path, lambda: unless_gone(
            lambda: self._client.delete_node_pool(name=path, timeout=TIMEOUT, retry=None)), at, progress, what, where)


def _where(resource: Resource) -> Where:
    zone = resource.fields["zone"]
    return Where(zone, region_of(zone), resource.fields["machineType"])
