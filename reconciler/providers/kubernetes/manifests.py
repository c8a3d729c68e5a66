"""The Kubernetes objects of a spec, as Google's tutorial publishes them (RECIPES §8), with what the spec decides.

Images, ports, args and env follow the published manifests; what they hard-code is derived here instead: the model
server's node selector, `google.com/tpu` count, `--platform_chip` and `--platform_topology` come from its pool (the
published file says tpuv4 on a v5e pool), `--sax_cell` and the admin's SAX_CELL from `sax.cell`, the Sax root from
the admin bucket, and the HTTP Service is an internal load balancer unless the spec says `exposure: public`.

A multi-host slice (2x4 on two 4-chip hosts) needs one model server per host, all started together, each knowing its
worker id and its peers: a StatefulSet (stable names sax-model-server-0, -1; Parallel start; the pod-index label as
TPU_WORKER_ID) behind a headless Service that gives each host a DNS name (TPU_WORKER_HOSTNAMES). A Deployment cannot
say which host a pod is; GKE injects those variables itself only for Indexed Jobs and JobSets, and a Job is for work
that ends (its pod template cannot even be updated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.providers.iam.resources import email_of
from reconciler.providers.kubernetes import ownership
from reconciler.providers.kubernetes.kinds import KINDS
from reconciler.spec import tpu
from reconciler.spec.model import Spec

ADMIN_SERVER = "sax-admin-server"
MODEL_SERVER = "sax-model-server"
HTTP_SERVER = "sax-http"  # the published Deployment's name (not sax-http-server)
HTTP_SERVICE = "sax-http-lb"
ADMIN_PORT = 10000
MODEL_PORT = 10001
HTTP_CONTAINER_PORT = 8888  # the published HTTP server listens on 8888 whatever the Service's port
WORKLOAD_IDENTITY = "iam.gke.io/gcp-service-account"
LOAD_BALANCER_TYPE = "networking.gke.io/load-balancer-type"  # GKE's annotation; "Internal": a VPC-only address
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"  # set by the StatefulSet controller (GA in Kubernetes 1.32)
NODE_POOL_LABEL = "cloud.google.com/gke-nodepool"
TPU_ACCELERATOR_LABEL = "cloud.google.com/gke-tpu-accelerator"
TPU_TOPOLOGY_LABEL = "cloud.google.com/gke-tpu-topology"
TPU_RESOURCE = "google.com/tpu"
# Sax's names for TPU chips (saxml/server/proto_util.py); a generation missing here has none: the model server would
# advertise CHIP_TYPE_UNKNOWN and no params class would be served.
SAX_CHIPS = {"v4": "tpuv4", "v5e": "tpuv5e"}


@dataclass(frozen=True, slots=True)
class KubeObject:
    """One object saxctl applies, with where in the spec it comes from and what its rollout waits for."""

    manifest: dict[str, Any]
    spec_field: str
    workload: bool = False  # a Deployment or StatefulSet: apply waits for its rollout
    pool: str | None = None  # the node pool its pods need (named when they cannot be scheduled)

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def name(self) -> str:
        return self.manifest["metadata"]["name"]

    @property
    def namespace(self) -> str:
        return self.manifest["metadata"]["namespace"]


def namespace_of(spec: Spec) -> str:
    """Everything lives in the namespace of the Kubernetes service account the servers run as."""
    return spec.identity.kubernetes_service_account.namespace if spec.identity is not None else "default"


def sax_chip(generation: str) -> str | None:
    return SAX_CHIPS.get(generation)


def kube_objects(spec: Spec) -> list[KubeObject]:
    """The objects of the spec, parents first: the ApplySet record, the service account, the servers, the Service."""
    if spec.identity is None:
        return []
    namespace = namespace_of(spec)
    parent = ownership.parent_name(spec.name)
    labels = ownership.member_labels(spec.name, ownership.applyset_id(parent, namespace))
    ksa = spec.identity.kubernetes_service_account
    members = [KubeObject(_service_account(spec, labels), "identity.kubernetesServiceAccount")]
    if spec.sax is not None:
        members += _sax_servers(spec, labels, ksa.name)
    return [KubeObject(_applyset_parent(spec, parent, namespace, members), "metadata.name")] + members


def _meta(name: str, namespace: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> dict:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if annotations:
        meta["annotations"] = annotations
    return meta


def _applyset_parent(spec: Spec, name: str, namespace: str, members: list[KubeObject]) -> dict:
    set_id = ownership.applyset_id(name, namespace)
    group_kinds = sorted({KINDS[member.kind].group_kind for member in members})
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _meta(name, namespace, {**ownership.mark(spec.name), ownership.APPLYSET_ID: set_id},
                              {ownership.TOOLING: ownership.TOOL,
                               ownership.CONTAINS_GROUP_KINDS: ",".join(group_kinds)})}


def _service_account(spec: Spec, labels: dict[str, str]) -> dict:
    ksa, gsa = spec.identity.kubernetes_service_account, spec.identity.google_service_account
    # The email is the account's own name (ACCOUNT@PROJECT.iam.gserviceaccount.com), known before it exists: the
    # plan shows it, and the service account need not wait for IAM.
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": _meta(ksa.name, ksa.namespace, labels,
                              {WORKLOAD_IDENTITY: email_of(spec.project.id, gsa.name)})}


def _sax_servers(spec: Spec, labels: dict[str, str], service_account: str) -> list[KubeObject]:
    sax, namespace = spec.sax, namespace_of(spec)
    sax_root = {"name": "SAX_ROOT", "value": f"gs://{spec.buckets.admin.name}/sax-root"}
    admin = _container(ADMIN_SERVER, sax.admin_server.image, ADMIN_PORT, privileged=True, env=[
        {"name": "GSBUCKET", "value": spec.buckets.admin.name},
        # The image's entrypoint reads the cell from SAX_CELL (its default is /sax/test).
        {"name": "SAX_CELL", "value": sax.cell}])
    http = _container(HTTP_SERVER, sax.http_server.image, HTTP_CONTAINER_PORT, env=[sax_root])
    http["imagePullPolicy"] = "Always"  # as published
    servers = [
        KubeObject(_deployment(ADMIN_SERVER, namespace, labels, sax.admin_server.replicas,
                               {"serviceAccountName": service_account, "containers": [admin]}),
                   "sax.adminServer", workload=True),
        *_model_server(spec, labels, service_account, sax_root),
        KubeObject(_deployment(HTTP_SERVER, namespace, labels, sax.http_server.replicas,
                               {"serviceAccountName": service_account, "containers": [http]}),
                   "sax.httpServer", workload=True),
        KubeObject(_http_service(spec, labels), "sax.httpServer.exposure"),
    ]
    return servers


def _container(name: str, image: str, port: int, *, privileged: bool = False, env: list[dict] | None = None,
               args: list[str] | None = None) -> dict:
    container: dict[str, Any] = {"name": name, "image": image}
    if args:
        container["args"] = args
    # The protocol is written out: it is part of the port's key in server-side apply's field ownership.
    container["ports"] = [{"containerPort": port, "protocol": "TCP"}]
    if env:
        container["env"] = env
    if privileged:
        container["securityContext"] = {"privileged": True}
    return container


def _model_server(spec: Spec, labels: dict[str, str], service_account: str, sax_root: dict) -> list[KubeObject]:
    sax, namespace = spec.sax, namespace_of(spec)
    pool = next(p for p in spec.cluster.tpu_pools if p.name == sax.model_server.pool)
    tpu_slice = tpu.tpu_slice(pool)
    machine = tpu.TPU_MACHINES[pool.machine_type]
    chip = sax_chip(machine.generation) or f"tpu{machine.generation}"  # the preflight refuses a chip Sax lacks
    container = _container(MODEL_SERVER, sax.model_server.image, MODEL_PORT, privileged=True, env=[sax_root], args=[
        f"--port={MODEL_PORT}", f"--sax_cell={sax.cell}", f"--platform_chip={chip}",
        f"--platform_topology={tpu_slice.topology}", "--jax_platforms=tpu"])
    chips = str(tpu_slice.chips_per_node)
    container["resources"] = {"requests": {TPU_RESOURCE: chips}, "limits": {TPU_RESOURCE: chips}}
    pod = {"serviceAccountName": service_account,
           # The pool by name too: a cluster may hold several pools of the same shape.
           "nodeSelector": {TPU_ACCELERATOR_LABEL: tpu_slice.accelerator, TPU_TOPOLOGY_LABEL: tpu_slice.topology,
                            NODE_POOL_LABEL: pool.name},
           "containers": [container]}
    if not tpu_slice.multi_host:
        return [KubeObject(_deployment(MODEL_SERVER, namespace, labels, sax.model_server.replicas, pod),
                           "sax.modelServer", workload=True, pool=pool.name)]
    hosts = [f"{MODEL_SERVER}-{index}.{MODEL_SERVER}" for index in range(tpu_slice.nodes)]
    container["env"] = container["env"] + [
        {"name": "TPU_WORKER_ID", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{POD_INDEX_LABEL}']"}}},
        {"name": "TPU_WORKER_HOSTNAMES", "value": ",".join(hosts)}]
    headless = {"apiVersion": "v1", "kind": "Service", "metadata": _meta(MODEL_SERVER, namespace, labels),
                "spec": {"clusterIP": "None", "selector": {"app": MODEL_SERVER},
                         "ports": [{"name": "model", "port": MODEL_PORT, "protocol": "TCP"}]}}
    stateful_set = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _meta(MODEL_SERVER, namespace, labels),
                    "spec": {"replicas": tpu_slice.nodes, "serviceName": MODEL_SERVER,
                             # Every host of the slice at once: JAX waits for all of them to join.
                             "podManagementPolicy": "Parallel",
                             "selector": {"matchLabels": {"app": MODEL_SERVER}},
                             "template": {"metadata": {"labels": {"app": MODEL_SERVER}}, "spec": pod}}}
    return [KubeObject(headless, "sax.modelServer"),
            KubeObject(stateful_set, "sax.modelServer", workload=True, pool=pool.name)]


def _deployment(name: str, namespace: str, labels: dict[str, str], replicas: int, pod: dict) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, namespace, labels),
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod}}}


def _http_service(spec: Spec, labels: dict[str, str]) -> dict:
    http = spec.sax.http_server
    annotations = None if http.exposure == "public" else {LOAD_BALANCER_TYPE: "Internal"}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": _meta(HTTP_SERVICE, namespace_of(spec), labels, annotations),
            "spec": {"type": "LoadBalancer", "selector": {"app": HTTP_SERVER},
                     "ports": [{"port": http.port, "targetPort": HTTP_CONTAINER_PORT, "protocol": "TCP"}]}}
