"""gke.cluster: a GKE cluster (container v1) with its CPU nodes, read, compared and changed.

What saxctl owns: location, release channel, the Workload Identity pool, its ownership labels (resourceLabels: GKE
and others may add their own), and the CPU pool's machine type and node count. Versions are GKE's under a release
channel, never saxctl's: an auto-upgrade is no change.
"""

from __future__ import annotations

from typing import Any, Mapping

from reconciler.engine.provider import Progress
from reconciler.engine.resource import Action, Change, Hazard, Observed, Resource
from reconciler.errors import ConflictError, RemoteError
from reconciler.providers.gke import addresses
from reconciler.providers.gke.diffs import ERROR, PROVISIONING, STOPPING, changed_paths, compare
from reconciler.providers.gke.kind import ObjectKind
from reconciler.providers.gke.operations import TIMEOUT, ClusterAt, Where, unless_exists, unless_gone
from reconciler.providers.gke.resources import DEFAULT_POOL, cluster_name, region_of
from reconciler.providers.google_errors import api_status
from reconciler.providers.google_retry import idempotent
from reconciler.providers.ownership import SPEC_LABEL, owner

NOUN = "cluster"
_SIZED = ("RUNNING", "RECONCILING", "DEGRADED", "RUNNING_WITH_ERROR")  # statuses whose instance groups are there


def diff(desired: Resource, observed: Observed | None) -> Change:
    owned = desired.fields
    if observed is not None and observed.facts.get("cpu_autoscaled"):  # the autoscaler decides the count
        owned = {**owned, "cpuNodes": {k: v for k, v in owned["cpuNodes"].items() if k != "nodeCount"}}
    return compare(desired, observed, noun=NOUN, owned=owned)


def observed_cluster(address: str, project: str, cluster, cpu_node_count: Any) -> Observed:
    """The live cluster in the normal form of gke.resources; cpu_node_count from its instance groups."""
    name = cluster_name(project, cluster.location, cluster.name)
    pool = default_pool(cluster)
    fields = {
        "location": cluster.location,
        "releaseChannel": cluster.release_channel.channel.name,
        "workloadPool": cluster.workload_identity_config.workload_pool or None,
        "resourceLabels": dict(cluster.resource_labels),
        "cpuNodes": {"machineType": pool.config.machine_type, "nodeCount": cpu_node_count} if pool else None,
    }
    outputs = {"name": name, "location": cluster.location,
               "workload_pool": cluster.workload_identity_config.workload_pool}
    if cluster.status.name != PROVISIONING:  # its API server answers once the create is done
        outputs.update(endpoint=cluster.endpoint, ca_certificate=cluster.master_auth.cluster_ca_certificate)
    facts = {"status": cluster.status.name, "status_message": cluster.status_message,
             "pools": [each.name for each in cluster.node_pools], "node_count": cluster.current_node_count,
             "cpu_autoscaled": bool(pool is not None and pool.autoscaling.enabled)}
    return _cluster_observed(address, name, fields, facts, outputs,
                             f"etag {cluster.etag}, {cluster.status.name}, {DEFAULT_POOL} {cpu_node_count} node(s)")


def modelled(address: str, applied: Resource) -> Observed:
    """The cluster applying `applied` leaves: running, its CPU nodes as asked. Its endpoint and CA are stand-ins
    (they are not known offline, and nothing shows them: they only say how to reach the cluster)."""
    fields = dict(applied.fields)
    name = applied.remote_id
    outputs = {"name": name, "location": fields["location"], "workload_pool": fields["workloadPool"],
               "endpoint": f"(the endpoint of {name}: not read offline)",
               "ca_certificate": f"(the CA certificate of {name}: not read offline)"}
    facts = {"status": "RUNNING", "status_message": "", "pools": [DEFAULT_POOL],
             "node_count": fields["cpuNodes"]["nodeCount"], "cpu_autoscaled": False}
    return _cluster_observed(address, name, fields, facts, outputs, "etag (not read: offline)")


def _cluster_observed(address: str, name: str, fields: Mapping[str, Any], facts: Mapping[str, Any],
                      outputs: Mapping[str, Any], fingerprint: str) -> Observed:
    return Observed(
        address=address,
        remote_id=name,
        fields=fields,
        fingerprint=fingerprint,
        owner=owner(fields["resourceLabels"]),
        facts=facts,
        # What is not known yet stays unknown (known after apply) to what depends on it.
        outputs={key: value for key, value in outputs.items() if value},
    )


def default_pool(cluster):
    return next((pool for pool in cluster.node_pools if pool.name == DEFAULT_POOL), None)


def cluster_body(resource: Resource):
    from google.cloud import container_v1

    fields = resource.fields
    return container_v1.Cluster(
        name=resource.name,
        release_channel=container_v1.ReleaseChannel(
            channel=container_v1.ReleaseChannel.Channel[fields["releaseChannel"]]),
        workload_identity_config=container_v1.WorkloadIdentityConfig(workload_pool=fields["workloadPool"]),
        resource_labels=dict(fields["resourceLabels"]),
        node_pools=[cpu_pool_body(fields["cpuNodes"])],
    )


def cpu_pool_body(cpu_nodes: Mapping[str, Any]):
    from google.cloud import container_v1

    return container_v1.NodePool(name=DEFAULT_POOL, initial_node_count=cpu_nodes["nodeCount"],
                                 config=container_v1.NodeConfig(machine_type=cpu_nodes["machineType"]))


def hazard(change: Change) -> Hazard | None:
    facts = change.observed.facts
    what = f"cluster {change.observed.remote_id}"
    if facts.get("status") == STOPPING:
        return Hazard(f"{what} is already being deleted", needs_approval=False)
    pools = facts.get("pools") or []
    return Hazard(f"deleting {what} stops everything running on it: {facts.get('node_count', 0)} node(s) in "
                  f"{len(pools)} pool(s) ({', '.join(pools)}), their workloads, the load balancers of its Services and "
                  "its persistent volumes",
                  needs_approval=change.action is Action.REPLACE or change.pruned)


class Clusters(ObjectKind):
    # --- reading -------------------------------------------------------------------------------------------------

    def observe(self, resource: Resource) -> Observed | None:
        """The cluster at its location; else, one of this spec's by the same name elsewhere (a location to change)."""
        live = self.get(ClusterAt.of(resource.remote_id)) or self._elsewhere(resource)
        if live is None:
            return None
        return observed_cluster(resource.address, resource.params["project"], live, self.cpu_node_count(live))

    def read_again(self, resource: Resource):
        live = self.get(ClusterAt.of(resource.remote_id))
        if live is None:
            return None, None
        return live, observed_cluster(resource.address, resource.params["project"], live, self.cpu_node_count(live))

    def get(self, at: ClusterAt):
        from google.api_core.exceptions import NotFound

        def read():
            try:
                return self._client.get_cluster(name=at.path, timeout=TIMEOUT, retry=None)
            except NotFound:
                return None

        return idempotent("container.projects.locations.clusters.get", at.path, read)

    def list(self, project: str) -> list:
        parent = f"projects/{project}/locations/-"
        return idempotent("container.projects.locations.clusters.list", parent, lambda: list(
            self._client.list_clusters(parent=parent, timeout=TIMEOUT, retry=None).clusters))

    def _elsewhere(self, resource: Resource):
        spec_name = resource.fields["resourceLabels"][SPEC_LABEL]
        mine = [cluster for cluster in self.list(resource.params["project"])
                if cluster.name == resource.name and owner(dict(cluster.resource_labels)) == spec_name]
        return mine[0] if mine else None

    def cpu_node_count(self, cluster) -> Any:
        """Nodes per zone of the CPU pool (a list when its zones disagree), None when GKE has no instance group."""
        pool = default_pool(cluster)
        if pool is None or cluster.status.name not in _SIZED or pool.status.name not in _SIZED:
            return None
        return self._instance_groups.pool_size(pool)

    # --- changing ------------------------------------------------------------------------------------------------

    def create(self, resource: Resource, progress: Progress) -> Observed:
        """Create it, or wait for the create an earlier attempt started: the world is read first, so a retry of a
        create whose reply was lost (or a run killed mid-create) never creates twice."""
        at = ClusterAt.of(resource.remote_id)
        live = self.get(at)
        if live is not None and live.status.name == STOPPING:
            self._operations.resume(at, "DELETE_CLUSTER", progress, resource.address, _where(resource))
            live = self.get(at)
        if live is None:
            progress.update(f"creating cluster {at.path}")
            self._run(at, "container.projects.locations.clusters.create", resource, progress,
                      lambda: unless_exists(lambda: self._client.create_cluster(
                          parent=at.parent, cluster=cluster_body(resource), timeout=TIMEOUT, retry=None)))
            live = self.get(at)
        if live is None:
            raise RemoteError(f"{resource.address}: {at.path} was created but cannot be read back")
        if owner(dict(live.resource_labels)) != resource.fields["resourceLabels"][SPEC_LABEL]:
            raise ConflictError(f"{at.path} was created meanwhile by someone else: saxctl did not change it",
                                hint="Run `saxctl plan` again to see it.")
        if live.status.name == PROVISIONING:
            self._operations.resume(at, "CREATE_CLUSTER", progress, resource.address, _where(resource))
        elif live.status.name == ERROR:
            raise RemoteError(f"{resource.address}: {at.path} is in ERROR: {live.status_message or 'no message'}",
                              hint="Run `saxctl plan` again: it plans to delete it and create it again.")
        return self.observe(resource)

    def update(self, change: Change, progress: Progress) -> Observed:
        """Each change the plan named that the live cluster still needs, one operation after another, each over the
        cluster read just before it (unmoved) and conditional on that read's etag."""
        from google.cloud import container_v1

        resource = change.desired
        at = ClusterAt.of(resource.remote_id)
        paths = changed_paths(change)
        if "status" in paths:
            self._operations.resume(at, "CREATE_CLUSTER", progress, resource.address, _where(resource))
        fields = resource.fields
        live = self.unmoved(change)
        if "releaseChannel" in paths and live.release_channel.channel.name != fields["releaseChannel"]:
            channel = container_v1.ReleaseChannel(channel=container_v1.ReleaseChannel.Channel[fields["releaseChannel"]])
            self._run(at, "container.projects.locations.clusters.update", resource, progress,
                      lambda: self._client.update_cluster(name=at.path, update=container_v1.ClusterUpdate(
                          desired_release_channel=channel, etag=live.etag), timeout=TIMEOUT, retry=None))
            live = self.unmoved(change)
        if "workloadPool" in paths and live.workload_identity_config.workload_pool != fields["workloadPool"]:
            identity = container_v1.WorkloadIdentityConfig(workload_pool=fields["workloadPool"])
            self._run(at, "container.projects.locations.clusters.update", resource, progress,
                      lambda: self._client.update_cluster(name=at.path, update=container_v1.ClusterUpdate(
                          desired_workload_identity_config=identity, etag=live.etag), timeout=TIMEOUT, retry=None))
        if "resourceLabels" in paths:
            self._set_labels(at, change, progress)
        if "cpuNodes" in paths:
            self._update_cpu_nodes(at, change, paths, progress)
        return self.observe(resource)

    def _set_labels(self, at: ClusterAt, change: Change, progress: Progress) -> None:
        """Add saxctl's labels to those the cluster has (GKE's and others' stay), at the label fingerprint read."""
        from google.api_core.exceptions import BadRequest
        from google.cloud import container_v1

        resource = change.desired
        for _ in range(3):  # a fingerprint that moved between the read and the write: read again
            live = self.unmoved(change)
            wanted = {**dict(live.resource_labels), **resource.fields["resourceLabels"]}
            if wanted == dict(live.resource_labels):
                return

            def set_labels(live=live, wanted=wanted):
                try:
                    return self._client.set_labels(request=container_v1.SetLabelsRequest(
                        name=at.path, resource_labels=wanted, label_fingerprint=live.label_fingerprint),
                        timeout=TIMEOUT, retry=None)
                except BadRequest as error:
                    if api_status(error) == "FAILED_PRECONDITION" and "fingerprint" in str(error.message):
                        return None
                    raise

            if self._run(at, "container.projects.locations.clusters.setResourceLabels", resource, progress,
                         set_labels) is not None:
                return
        raise RemoteError(f"{resource.address}: the labels of {at.path} kept changing while saxctl set them")

    def _update_cpu_nodes(self, at: ClusterAt, change: Change, paths: set[str], progress: Progress) -> None:
        from google.cloud import container_v1

        resource = change.desired
        wanted = resource.fields["cpuNodes"]
        live = self.unmoved(change)
        pool = default_pool(live)
        pool_path = f"{at.path}/nodePools/{DEFAULT_POOL}"
        if pool is None:
            self._run(at, "container.projects.locations.clusters.nodePools.create", resource, progress,
                      lambda: self._client.create_node_pool(parent=at.path, node_pool=cpu_pool_body(wanted),
                                                            timeout=TIMEOUT, retry=None))
            return
        if "cpuNodes.machineType" in paths and pool.config.machine_type != wanted["machineType"]:
            # In place: GKE moves the nodes to the new machine type (a rolling recreation).
            self._run(at, "container.projects.locations.clusters.nodePools.update", resource, progress,
                      lambda: self._client.update_node_pool(request=container_v1.UpdateNodePoolRequest(
                          name=pool_path, node_version=pool.version, image_type=pool.config.image_type,
                          machine_type=wanted["machineType"], etag=pool.etag), timeout=TIMEOUT, retry=None))
            live = self.unmoved(change)
        # Re-read: a cluster the plan saw still being created has its size now.
        if ("cpuNodes.nodeCount" in paths and not pool.autoscaling.enabled
                and self.cpu_node_count(live) != wanted["nodeCount"]):
            def resize():  # setSize takes no etag: checked before each attempt, after waiting out another one too
                self.unmoved(change)
                return self._client.set_node_pool_size(request=container_v1.SetNodePoolSizeRequest(
                    name=pool_path, node_count=wanted["nodeCount"]), timeout=TIMEOUT, retry=None)

            self._run(at, "container.projects.locations.clusters.nodePools.setSize", resource, progress, resize)

    def delete(self, path: str, progress: Progress) -> None:
        at = ClusterAt.of(path)
        live = self.get(at)
        if live is None:
            return
        what, where = addresses.cluster(at.name), Where(at.location, region_of(at.location), "its nodes")
        if live.status.name == STOPPING:
            self._operations.resume(at, "DELETE_CLUSTER", progress, what, where)
            return
        progress.update(f"deleting cluster {at.path}")
        self._operations.run("container.projects.locations.clusters.delete", at.path, lambda: unless_gone(
            lambda: self._client.delete_cluster(name=at.path, timeout=TIMEOUT, retry=None)), at, progress, what, where)

    def _run(self, at: ClusterAt, method: str, resource: Resource, progress: Progress, call):
        return self._operations.run(method, at.path, call, at, progress, resource.address, _where(resource))


def _where(resource: Resource) -> Where:
    location = resource.fields["location"]
    return Where(location, region_of(location), resource.fields["cpuNodes"]["machineType"])
