"""The node sink against the real apiserver: a node pool's nodes become kwok Nodes, kept exactly as the pool says."""

import dataclasses
import socket
import time

import pytest

from reconciler.errors import RemoteError
from reconciler.sandbox.kube.nodes import CLUSTER_LABEL, FIELD_MANAGER, POOL_LABEL, KubeNodeSink
from kube_testkit import TPU_TAINT, cpu_node, tpu_node, wait_for


def pool_nodes(core, cluster: str, pool: str) -> dict:
    listed = core.list_node(label_selector=f"{CLUSTER_LABEL}={cluster},{POOL_LABEL}={pool}")
    return {node.metadata.name: node for node in listed.items}


def sink_writes(node) -> list[tuple]:
    """When the sink last wrote the Node and its status (its managedFields entries)."""
    return sorted((entry.subresource or "", entry.time) for entry in node.metadata.managed_fields
                  if entry.manager == FIELD_MANAGER)


def is_ready(node) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))


def test_a_tpu_node_is_a_kwok_node_with_gkes_labels_taint_and_capacity_and_becomes_ready(core, node_sink, unique_name):
    cluster = unique_name("c")
    spec = tpu_node(cluster, "tpu", 0)
    node_sink.sync(cluster, "tpu", [spec])

    node = core.read_node(spec.name)
    assert node.metadata.annotations["kwok.x-k8s.io/node"] == "fake"
    assert node.metadata.labels.items() >= {**spec.labels, CLUSTER_LABEL: cluster, POOL_LABEL: "tpu",
                                            "kubernetes.io/hostname": spec.name}.items()
    assert [(t.key, t.value, t.effect) for t in node.spec.taints or [] if t.key == "google.com/tpu"] == \
        [("google.com/tpu", "present", "NoSchedule")]
    assert node.status.capacity["google.com/tpu"] == node.status.allocatable["google.com/tpu"] == "4"
    assert node.status.capacity["cpu"] == "24" and node.status.allocatable["memory"] == "48Gi"

    wait_for("the Node is Ready (kwok heartbeats it)", lambda: is_ready(core.read_node(spec.name)))
    wait_for("the node-lifecycle controller lifts the not-ready taint new Nodes get",
             lambda: not [t for t in core.read_node(spec.name).spec.taints or []
                          if t.key == "node.kubernetes.io/not-ready"])
    node = core.read_node(spec.name)
    assert node.status.capacity["google.com/tpu"] == "4", "kwok keeps the capacity the sink set"
    assert [t.key for t in node.spec.taints] == ["google.com/tpu"]


def test_syncing_a_changed_pool_changes_its_nodes_in_place_and_drops_what_the_pool_no_longer_has(
        core, node_sink, unique_name):
    cluster = unique_name("c")
    first = tpu_node(cluster, "tpu", 0)
    node_sink.sync(cluster, "tpu", [first])
    uid = core.read_node(first.name).metadata.uid
    written = sink_writes(core.read_node(first.name))
    assert [subresource for subresource, _ in written] == ["", "status"]
    time.sleep(1.1)  # managedFields times have one-second resolution: a second write would show a later one
    node_sink.sync(cluster, "tpu", [first])  # unchanged: nothing to write
    assert sink_writes(core.read_node(first.name)) == written

    labels = {key: value for key, value in first.labels.items() if key != "cloud.google.com/gke-tpu-topology"}
    changed = dataclasses.replace(first, labels={**labels, "team": "ml"}, taints=(),
                                  capacity={**first.capacity, "google.com/tpu": "8"})
    node_sink.sync(cluster, "tpu", [changed])
    node = core.read_node(first.name)
    assert node.metadata.uid == uid, "updated in place, not replaced"
    assert node.metadata.labels["team"] == "ml"
    assert "cloud.google.com/gke-tpu-topology" not in node.metadata.labels
    assert not [t for t in node.spec.taints or [] if t.key == TPU_TAINT["key"]]
    assert node.status.capacity["google.com/tpu"] == node.status.allocatable["google.com/tpu"] == "8"


def test_resizing_a_pool_deletes_its_extra_nodes_and_zero_deletes_them_all_leaving_other_pools_alone(
        core, node_sink, unique_name):
    cluster, other_cluster = unique_name("c"), unique_name("d")
    node_sink.sync(cluster, "cpu", [cpu_node(cluster, "cpu", index) for index in range(3)])
    node_sink.sync(cluster, "tpu", [tpu_node(cluster, "tpu", 0)])
    node_sink.sync(other_cluster, "cpu", [cpu_node(other_cluster, "cpu", 0)])  # same pool name, other cluster
    assert sorted(pool_nodes(core, cluster, "cpu")) == [f"gke-{cluster}-cpu-{index}" for index in range(3)]

    node_sink.sync(cluster, "cpu", [cpu_node(cluster, "cpu", 0)])
    assert sorted(pool_nodes(core, cluster, "cpu")) == [f"gke-{cluster}-cpu-0"]

    node_sink.sync(cluster, "cpu", [])
    assert pool_nodes(core, cluster, "cpu") == {}
    assert list(pool_nodes(core, cluster, "tpu")) == [f"gke-{cluster}-tpu-0"]
    assert list(pool_nodes(core, other_cluster, "cpu")) == [f"gke-{other_cluster}-cpu-0"]


def test_a_node_the_apiserver_refuses_is_an_error_naming_the_node_and_the_field(node_sink, unique_name):
    cluster = unique_name("c")
    bad = dataclasses.replace(cpu_node(cluster, "cpu", 0), labels={"cloud.google.com/gke-nodepool": "not valid!"})
    with pytest.raises(RemoteError) as refused:
        node_sink.sync(cluster, "cpu", [bad])
    assert f"refused to apply node {bad.name}: 422" in refused.value.message
    assert "metadata.labels" in refused.value.message and "not valid!" in refused.value.message


def test_an_apiserver_that_is_not_there_is_an_error_saying_so(sandbox, secret_file):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens once the socket is closed
    kubeconfig = secret_file("kubeconfig", open(sandbox.env["SAXCTL_SANDBOX_KUBECONFIG"]).read()
                             .replace(sandbox.state["emulators"]["kube-apiserver"]["health_url"].rsplit("/", 1)[0],
                                      f"https://127.0.0.1:{port}"))
    sink = KubeNodeSink(kubeconfig)
    try:
        with pytest.raises(RemoteError) as unreachable:
            sink.sync("c", "cpu", [])
    finally:
        sink.close()
    assert "could not be reached to list nodes" in unreachable.value.message
    assert unreachable.value.hint == "Is the sandbox up? saxctl sandbox status"
