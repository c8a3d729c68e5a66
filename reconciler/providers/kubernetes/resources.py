"""The Kubernetes family's desired resources: each object of manifests.py, living inside the spec's GKE cluster.

A resource's fields are its manifest flattened along the field set saxctl applies (fields.py), so the plan shows
one line per field; its params carry the manifest itself and the cluster's endpoint and CA as Refs: known once the
cluster exists, and until then nothing in it is read (it is planned as create with no API call).
"""

from __future__ import annotations

from typing import Any

from reconciler.engine.address import Address
from reconciler.engine.resource import Ref, Resource
from reconciler.providers.gcs import bucket as gcs_bucket
from reconciler.providers.gke import addresses as gke_at
from reconciler.providers.iam import addresses as iam_at
from reconciler.providers.kubernetes import addresses as kube_at
from reconciler.providers.kubernetes.fields import field_set, flatten
from reconciler.providers.kubernetes.manifests import KubeObject, kube_objects
from reconciler.spec.model import Spec

ADDRESS_KINDS = {"ServiceAccount": kube_at.SERVICE_ACCOUNT, "Deployment": kube_at.DEPLOYMENT,
                 "StatefulSet": kube_at.STATEFUL_SET, "Service": kube_at.SERVICE, "ConfigMap": kube_at.APPLYSET}
# Fields the API never changes in place: a change deletes the object and creates it again.
REPLACE_ON = {"Deployment": frozenset({"spec.selector"}),
              "StatefulSet": frozenset({"spec.selector", "spec.serviceName", "spec.podManagementPolicy"}),
              "Service": frozenset({"spec.clusterIP"})}


def address_of(manifest: dict[str, Any]) -> Address:
    meta = manifest["metadata"]
    return Address(ADDRESS_KINDS[manifest["kind"]], f"{meta['namespace']}/{meta['name']}")


def remote_id(kind: str, namespace: str, name: str, cluster: str) -> str:
    return f"{kind} {namespace}/{name} in cluster {cluster}"


def desired_resources(spec: Spec) -> list[Resource]:
    objects = kube_objects(spec)
    if not objects or spec.cluster is None:
        return []
    cluster = gke_at.cluster(spec.cluster.name)
    parent, *members = objects
    parent_address = address_of(parent.manifest)
    resources = [_resource(spec, parent, cluster, ())]
    ksa = next(address_of(m.manifest) for m in members if m.kind == "ServiceAccount")
    for member in members:
        depends_on = (parent_address,)
        if member.workload:
            depends_on += (ksa, *_workload_needs(spec, member))
        if member.kind == "StatefulSet":  # its pods' DNS names come from its headless Service
            depends_on += (kube_at.service(member.namespace, member.manifest["spec"]["serviceName"]),)
        resources.append(_resource(spec, member, cluster, depends_on))
    return resources


def _workload_needs(spec: Spec, member: KubeObject) -> tuple[Address, ...]:
    """What the servers need before they start: the Sax root's bucket, their Google identity, their nodes."""
    gsa = spec.identity.google_service_account
    needs = [gcs_bucket.address("admin"), iam_at.service_account(gsa.name),
             *(iam_at.project_binding(role) for role in gsa.project_roles),
             iam_at.workload_identity(spec.identity.kubernetes_service_account.namespace,
                                      spec.identity.kubernetes_service_account.name)]
    if member.pool is not None:
        needs.append(gke_at.node_pool(member.pool))
    return tuple(needs)


def _resource(spec: Spec, member: KubeObject, cluster: Address, depends_on: tuple[Address, ...]) -> Resource:
    manifest = member.manifest
    address = address_of(manifest)
    params: dict[str, Any] = {
        "cluster": spec.cluster.name,
        "endpoint": Ref(cluster, "endpoint"),
        "ca_certificate": Ref(cluster, "ca_certificate"),
        "manifest": manifest,
        "workload": member.workload,
        "pool": member.pool,
        # the pool's node count: a rollout waits while the pool has fewer (it is growing), not once it is full
        "pool_size": next((pool.nodes for pool in spec.cluster.tpu_pools if pool.name == member.pool), None),
    }
    return Resource(
        address=address,
        kind=address.kind,
        name=address.name,
        fields=flatten(manifest, field_set(manifest)),
        depends_on=depends_on,
        inside=cluster,
        replace_on=REPLACE_ON.get(manifest["kind"], frozenset()),
        params=params,
        spec_field=member.spec_field,
        remote_id=remote_id(manifest["kind"], member.namespace, member.name, spec.cluster.name),
    )
