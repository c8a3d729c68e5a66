"""Turn a spec document that passed every check into the typed, immutable model.

Every value already has its type: the schema takes integers only as integers (no 2.0, no true, no .nan).
"""

from __future__ import annotations

import os
from types import MappingProxyType
from typing import Any

from reconciler.spec.document import SpecDocument
from reconciler.spec.model import (
    Bucket, Buckets, Checkpoint, CheckpointSource, Cluster, CpuNodes, DriftIgnore, GoogleServiceAccount, HttpServer, Identity,
    KubernetesServiceAccount, Model, ModelServer, Project, Sax, Server, Spec, TpuPool,
)

DEFAULT_RELEASE_CHANNEL = "REGULAR"  # what GKE picks when a cluster names no channel


def build_spec(document: SpecDocument) -> Spec:
    root = document.root
    spec_dir = os.path.dirname(os.path.abspath(document.file))
    return Spec(
        api_version=root["apiVersion"],
        kind=root["kind"],
        name=root["metadata"]["name"],
        project=Project(id=root["project"]["id"], region=root["project"]["region"]),
        buckets=Buckets(admin=_bucket(root["buckets"]["admin"]), data=_bucket(root["buckets"]["data"])),
        cluster=_cluster(root["cluster"]) if "cluster" in root else None,
        identity=_identity(root["identity"]) if "identity" in root else None,
        sax=_sax(root["sax"]) if "sax" in root else None,
        checkpoints=MappingProxyType({
            name: _checkpoint(name, checkpoint, spec_dir) for name, checkpoint in root.get("checkpoints", {}).items()
        }),
        models=tuple(_model(model) for model in root.get("models", [])),
        drift_ignore=tuple(DriftIgnore(rule["address"], tuple(rule.get("fields", ())))
                           for rule in root.get("drift", {}).get("ignore", [])),
        source=document.source_map(),
    )


def _bucket(bucket: dict[str, Any]) -> Bucket:
    return Bucket(
        name=bucket["name"],
        location=bucket["location"],
        storage_class=bucket.get("storageClass"),
        uniform_access=bucket.get("uniformAccess", True),
        versioning=bucket.get("versioning"),
        labels=MappingProxyType(dict(bucket.get("labels", {}))),
    )


def _cluster(cluster: dict[str, Any]) -> Cluster:
    return Cluster(
        name=cluster["name"],
        location=cluster["location"],
        release_channel=cluster.get("releaseChannel", DEFAULT_RELEASE_CHANNEL),
        cpu_nodes=CpuNodes(count=cluster["cpuNodes"]["count"], machine_type=cluster["cpuNodes"]["machineType"]),
        tpu_pools=tuple(
            TpuPool(name=pool["name"], machine_type=pool["machineType"], topology=pool["topology"],
                    nodes=pool["nodes"], zone=pool.get("zone"))
            for pool in cluster["tpuPools"]
        ),
    )


def _identity(identity: dict[str, Any]) -> Identity:
    ksa, gsa = identity["kubernetesServiceAccount"], identity["googleServiceAccount"]
    return Identity(
        kubernetes_service_account=KubernetesServiceAccount(namespace=ksa["namespace"], name=ksa["name"]),
        google_service_account=GoogleServiceAccount(name=gsa["name"], project_roles=tuple(gsa["projectRoles"])),
    )


def _sax(sax: dict[str, Any]) -> Sax:
    admin, model, http = sax["adminServer"], sax["modelServer"], sax["httpServer"]
    return Sax(
        cell=sax["cell"],
        admin_server=Server(image=admin["image"], replicas=admin.get("replicas", 1)),
        model_server=ModelServer(image=model["image"], pool=model["pool"], replicas=model.get("replicas", 1)),
        http_server=HttpServer(image=http["image"], port=http.get("port", 8888),
                               exposure=http.get("exposure", "internal"), replicas=http.get("replicas", 1)),
    )


def _checkpoint(name: str, checkpoint: dict[str, Any], spec_dir: str) -> Checkpoint:
    path = checkpoint["source"]["path"]
    if not path.startswith("gs://"):
        # Relative to the spec file, not to wherever saxctl runs, so a spec means the same from any directory.
        path = os.path.normpath(os.path.join(spec_dir, os.path.expanduser(path)))
    return Checkpoint(
        name=name,
        source=CheckpointSource(format=checkpoint["source"]["format"], path=path),
        destination=checkpoint["destination"],
    )


def _model(model: dict[str, Any]) -> Model:
    return Model(name=model["name"], model_path=model["modelPath"], checkpoint=model["checkpoint"],
                 replicas=model.get("replicas", 1), overrides=MappingProxyType(dict(model.get("overrides") or {})))
