"""The Sax family's desired resources: each model of the spec, published in the spec's cell.

A model lives in the Sax admin, which lives in the cluster: its params carry the cluster's endpoint and CA as Refs
and a Ref to the admin Deployment, so that while either does not exist the model is planned as a publish with no
call. It requires of its checkpoint the commit markers (Sax would load a half-written one) and of the model server
workload its replicas available.
"""

from __future__ import annotations

from typing import Any

from reconciler.engine.resource import Ref, Requirement, Resource
from reconciler.providers import checkpoint as checkpoint_family
from reconciler.providers.gcs import bucket as gcs_bucket
from reconciler.providers.gke import addresses as gke_at
from reconciler.providers.kubernetes import addresses as kube_at
from reconciler.providers.kubernetes.manifests import ADMIN_PORT, ADMIN_SERVER, HTTP_SERVER, MODEL_SERVER, namespace_of
from reconciler.providers.sax import addresses as sax_at
from reconciler.providers.sax.decide import REPLACE_ON, model_id
from reconciler.spec import saxparams, tpu
from reconciler.spec.model import Spec

SAX_ROOT = "sax-root"  # the GKE images' SAX_ROOT is gs://ADMIN_BUCKET/sax-root (RECIPES §8)
MODEL_TIMEOUT_S = 900.0  # a publish waits this long for its replicas to load (GPT-J 6B takes minutes on TPUs)
WORKLOAD_WAIT_S = 120.0  # how long a change waits for the model server workload to become available


def desired_resources(spec: Spec) -> list[Resource]:
    if spec.sax is None or spec.cluster is None or not spec.models:
        return []
    return [_model(spec, index) for index in range(len(spec.models))]


def model_server_workload(spec: Spec):
    """The address of the model servers' Deployment (single host) or StatefulSet (multi-host)."""
    pool = next(p for p in spec.cluster.tpu_pools if p.name == spec.sax.model_server.pool)
    namespace = namespace_of(spec)
    if tpu.tpu_slice(pool).multi_host:
        return kube_at.stateful_set(namespace, MODEL_SERVER)
    return kube_at.deployment(namespace, MODEL_SERVER)


def connection_params(spec: Spec) -> dict[str, Any]:
    """How to reach the cell: the cluster (Refs to its endpoint and CA), the namespace, the admin bucket."""
    cluster = gke_at.cluster(spec.cluster.name)
    namespace = namespace_of(spec)
    return {
        "cluster": spec.cluster.name,
        "endpoint": Ref(cluster, "endpoint"),
        "ca_certificate": Ref(cluster, "ca_certificate"),
        "namespace": namespace,
        "admin": Ref(kube_at.deployment(namespace, ADMIN_SERVER), "name"),  # unknown until the admin exists
        "admin_port": ADMIN_PORT,
        "http_server": HTTP_SERVER,
        "admin_bucket": spec.buckets.admin.name,
        "sax_root": SAX_ROOT,
        "cell": spec.sax.cell,
        "owner": spec.name,
    }


def _model(spec: Spec, index: int) -> Resource:
    model = spec.models[index]
    address = sax_at.model(model.name)
    checkpoint = spec.checkpoints.get(model.checkpoint)
    checkpoint_path = checkpoint.destination if checkpoint is not None else model.checkpoint
    pool = next(p for p in spec.cluster.tpu_pools if p.name == spec.sax.model_server.pool)
    workload = model_server_workload(spec)
    namespace = namespace_of(spec)
    depends_on = [gcs_bucket.address("admin"), kube_at.deployment(namespace, ADMIN_SERVER), workload]
    # The admin needs no Requirement: a publish waits until the admin answers at the address it wrote.
    requires = [Requirement(workload, "available_replicas", 1, "available model server replicas",
                            "sax.modelServer", settles=True, wait_s=WORKLOAD_WAIT_S)]
    if checkpoint is not None:
        depends_on.append(checkpoint_family.address(model.checkpoint))
        requires.append(Requirement(checkpoint_family.address(model.checkpoint), "markers", True,
                                    "commit markers", f"models[{index}].checkpoint"))
    needed = saxparams.required_chips(model.model_path)
    params = {
        **connection_params(spec),
        "model_id": model_id(spec.sax.cell, model.name),
        "pool": {"name": pool.name, "machine_type": pool.machine_type,
                 "chips_per_node": tpu.TPU_MACHINES[pool.machine_type].chips_per_node},
        "needed_chips": needed[0] if needed is not None else None,
    }
    return Resource(
        address=address,
        kind=address.kind,
        name=model.name,
        fields={"model_path": model.model_path, "checkpoint": checkpoint_path, "replicas": model.replicas,
                "overrides": dict(sorted(model.overrides.items()))},
        depends_on=tuple(depends_on),
        inside=gke_at.cluster(spec.cluster.name),
        replace_on=REPLACE_ON,
        params=params,
        spec_field=f"models[{index}]",
        timeout_s=MODEL_TIMEOUT_S,
        remote_id=params["model_id"],
        requires=tuple(requires),
    )
