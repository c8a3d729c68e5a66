"""The node sink: makes a GKE node pool's nodes real Node objects in the sandbox's apiserver, simulated by kwok.

The GKE emulator calls `sync(cluster, pool, nodes)` whenever a pool's nodes change (create, resize, delete); this
module plays the part each node's kubelet plays on GKE when it registers: a Node with the pool's labels, taints and
capacity. kwok then keeps the Node Ready (heartbeats, a lease) and reports the pods bound to it Running.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path

from reconciler.errors import RemoteError
from reconciler.sandbox.gke.nodes import NodeSpec
from reconciler.sandbox.kube.control_plane import KWOK_NODE_ANNOTATION

# Which pool a Node belongs to: one apiserver serves every emulated cluster, so the cluster is named too.
CLUSTER_LABEL = "sandbox.saxctl.dev/cluster"
POOL_LABEL = "sandbox.saxctl.dev/node-pool"
FIELD_MANAGER = "saxctl-sandbox-node-sink"
# The GKE emulator syncs Nodes while it finishes an operation, under its store's lock: a request that hung would
# wedge the whole emulated GKE API, so each gets (connect, read) deadlines and fails, logged, instead.
REQUEST_TIMEOUT_S = (5, 30)
# Read by kube-apiserver's PodNodeSelector admission plugin: the pods of an annotated namespace get its node selector.
NAMESPACE_NODE_SELECTOR = "scheduler.alpha.kubernetes.io/node-selector"


def cluster_label(cluster: str) -> str:
    """A label value naming the cluster: its resource name projects/P/locations/L/clusters/C as P.L.C, which label
    values (at most 63 of [A-Za-z0-9._-]) can carry; a longer one keeps its end and a digest of the whole."""
    parts = cluster.split("/")
    short = ".".join(parts[1::2]) if len(parts) == 6 else cluster.replace("/", ".")
    if len(short) <= 63:
        return short
    digest = hashlib.sha256(cluster.encode()).hexdigest()[:10]
    return f"{short[-52:].lstrip('.-_')}-{digest}"


def cluster_namespace_annotations(cluster: str) -> dict[str, str]:
    """The annotations that make a namespace one emulated cluster's: its pods run on that cluster's nodes only, as
    they would in a GKE cluster of its own (the sandbox's one apiserver holds every cluster's nodes)."""
    return {NAMESPACE_NODE_SELECTOR: f"{CLUSTER_LABEL}={cluster_label(cluster)}"}


class KubeNodeSink:
    """NodeSink over the real Kubernetes API: `sync` makes a pool's Nodes exactly the ones given."""

    def __init__(self, kubeconfig_path: str | Path):
        # Imported here: the kubernetes client takes half a second to import, and only the GKE emulator needs it.
        from kubernetes import client, config

        self._api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig_path)))
        self._lock = threading.Lock()  # one sync at a time: each lists, then creates and deletes

    def sync(self, cluster: str, pool: str, nodes: Sequence[NodeSpec]) -> None:
        """Make this pool's Nodes exactly `nodes` (create missing, delete extra; [] when the pool goes).

        Idempotent: each Node is server-side applied, so an unchanged node is not written at all, and a label or
        taint dropped from the spec leaves the Node.
        """
        with self._lock:
            selector = f"{CLUSTER_LABEL}={cluster_label(cluster)},{POOL_LABEL}={pool}"
            existing = self._call("list nodes", selector, self._api.list_node, label_selector=selector)
            for node in nodes:
                self._apply(cluster, pool, node)
            wanted = {node.name for node in nodes}
            for stale in existing.items:
                if stale.metadata.name not in wanted:
                    self._call("delete node", stale.metadata.name, self._api.delete_node, stale.metadata.name,
                               missing_ok=True)  # gone meanwhile is what we want

    def close(self) -> None:
        self._api.api_client.close()

    def _apply(self, cluster: str, pool: str, node: NodeSpec) -> None:
        key, value = KWOK_NODE_ANNOTATION
        labels = {
            # What a kubelet puts on its own Node; GKE's labels come on top.
            "kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            **node.labels,
            CLUSTER_LABEL: cluster_label(cluster), POOL_LABEL: pool,
        }
        status = {"capacity": dict(node.capacity), "allocatable": dict(node.capacity)}
        # The status goes with the Node's creation, as a kubelet registers: kwok fills in a made-up capacity
        # (1k CPUs) on any Node it sees without one, and would race a second write.
        manifest = {"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": node.name, "labels": labels, "annotations": {key: value}},
                    "spec": {"taints": [dict(taint) for taint in node.taints]}, "status": status}
        self._call("apply node", node.name, self._api.patch_node, node.name, manifest, field_manager=FIELD_MANAGER,
                   force=True, _content_type="application/apply-patch+yaml")
        # An update of the Node itself ignores its status: a changed capacity takes the status subresource.
        self._call("apply node status", node.name, self._api.patch_node_status, node.name,
                   {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node.name}, "status": status},
                   field_manager=FIELD_MANAGER, force=True, _content_type="application/apply-patch+yaml")

    @staticmethod
    def _call(what: str, subject: str, method, *args, missing_ok: bool = False, **kwargs):
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return method(*args, _request_timeout=REQUEST_TIMEOUT_S, **kwargs)
        except ApiException as error:
            if missing_ok and error.status == 404:
                return None
            raise RemoteError(f"the sandbox's kube-apiserver refused to {what} {subject}: {error.status} "
                              f"{error.reason}: {_server_message(error)}") from None
        except HTTPError as error:
            raise RemoteError(f"the sandbox's kube-apiserver could not be reached to {what} {subject}: {error}",
                              hint="Is the sandbox up? saxctl sandbox status") from None


def _server_message(error) -> str:
    """The `message` of the Status the apiserver answered with, else the raw body."""
    import json

    try:
        return json.loads(error.body)["message"]
    except (TypeError, ValueError, KeyError):
        return str(error.body)
