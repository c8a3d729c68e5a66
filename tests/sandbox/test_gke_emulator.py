"""The GKE emulator through the real google-cloud-container client: operations, TPU pools, nodes, faults."""

import re
import time

import pytest
from google.api_core import exceptions
from google.cloud import container_v1

LOCATION = "us-central1-a"
DONE = container_v1.Operation.Status.DONE


@pytest.fixture
def gke(sandbox):
    return sandbox.gke_client()


@pytest.fixture
def parent(unique_project):
    """A project of its own per test: clusters and operations of other tests never show up."""
    return f"projects/{unique_project()}/locations/{LOCATION}"


def wait(gke, parent: str, operation: container_v1.Operation) -> container_v1.Operation:
    deadline = time.monotonic() + 30
    while operation.status != DONE:
        assert time.monotonic() < deadline, operation
        time.sleep(0.05)
        operation = gke.get_operation(name=f"{parent}/operations/{operation.name}", timeout=10)
    return operation


def cluster(name: str = "saxml", **fields) -> container_v1.Cluster:
    return container_v1.Cluster(name=name, release_channel=container_v1.ReleaseChannel(channel="RAPID"),
                                node_pools=[container_v1.NodePool(name="cpu", initial_node_count=2, config=(
                                    container_v1.NodeConfig(machine_type="e2-standard-4")))], **fields)


def tpu_pool(name: str, machine_type: str, topology: str, nodes: int) -> container_v1.NodePool:
    return container_v1.NodePool(name=name, initial_node_count=nodes,
                                 config=container_v1.NodeConfig(machine_type=machine_type),
                                 placement_policy=container_v1.NodePool.PlacementPolicy(tpu_topology=topology))


def test_create_runs_an_operation_to_a_running_cluster_with_what_gke_fills_in(gke, parent):
    operation = gke.create_cluster(parent=parent, cluster=cluster(), timeout=10)
    assert operation.operation_type == container_v1.Operation.Type.CREATE_CLUSTER
    assert operation.status in (container_v1.Operation.Status.PENDING, container_v1.Operation.Status.RUNNING)
    assert gke.get_cluster(name=f"{parent}/clusters/saxml", timeout=10).status == container_v1.Cluster.Status.PROVISIONING
    done = wait(gke, parent, operation)
    assert done.end_time and not done.error.message
    created = gke.get_cluster(name=f"{parent}/clusters/saxml", timeout=10)
    assert created.status == container_v1.Cluster.Status.RUNNING
    assert created.current_master_version.startswith("1.34") and created.current_node_count == 2
    pool = created.node_pools[0]
    assert pool.version == created.current_master_version, "a RAPID cluster's nodes run the channel's version"
    assert pool.config.disk_size_gb == 100 and pool.config.image_type == "COS_CONTAINERD"
    assert pool.management.auto_upgrade and pool.management.auto_repair
    assert pool.instance_group_urls[0].endswith("-grp") and created.location == LOCATION
    assert created.master_auth.cluster_ca_certificate and created.endpoint
    assert [op.name for op in gke.list_operations(parent=parent, timeout=10).operations] == [operation.name]


def test_a_second_operation_on_a_cluster_is_refused_while_one_runs(gke, parent, sandbox):
    wait(gke, parent, gke.create_cluster(parent=parent, cluster=cluster(), timeout=10))
    before = sandbox.control("GET", "gke", "operation-latency")
    sandbox.control("POST", "gke", "operation-latency", {"CREATE_NODE_POOL": 600})  # runs until released below
    try:
        running = gke.create_node_pool(parent=f"{parent}/clusters/saxml",
                                       node_pool=tpu_pool("tpu", "ct5lp-hightpu-4t", "2x2", 1), timeout=10)
    finally:
        sandbox.control("POST", "gke", "operation-latency", before)
    with pytest.raises(exceptions.BadRequest, match=f"Operation {running.name} is currently creating a node pool"):
        gke.set_node_pool_size(request={"name": f"{parent}/clusters/saxml/nodePools/cpu", "node_count": 3}, timeout=10)
    sandbox.control("POST", "gke", "operation-finish", {"name": f"{parent}/operations/{running.name}"})
    wait(gke, parent, gke.set_node_pool_size(request={"name": f"{parent}/clusters/saxml/nodePools/cpu",
                                                      "node_count": 3}, timeout=10))


def test_a_create_whose_reply_is_lost_happened_all_the_same(gke, parent, sandbox):
    """The case that makes a naive create run twice: the write commits, the client sees a 503."""
    clusters_path = f"/v1/{parent}/clusters$"
    sandbox.inject_fault("gke", method="POST", path=clusters_path, status=503, after_commit=True, count=1)
    with pytest.raises(exceptions.ServiceUnavailable):
        gke.create_cluster(parent=parent, cluster=cluster(), timeout=10, retry=None)
    with pytest.raises(exceptions.Conflict, match="Already exists"):
        gke.create_cluster(parent=parent, cluster=cluster(), timeout=10, retry=None)
    pending = [op for op in gke.list_operations(parent=parent, timeout=10).operations]
    assert [op.operation_type for op in pending] == [container_v1.Operation.Type.CREATE_CLUSTER]
    creates = [entry for entry in sandbox.requests("gke") if entry["method_id"].endswith("clusters.create")
               and parent in entry["path"]]
    assert [(entry["status"], entry["fault"] is not None) for entry in creates] == [(503, True), (409, False)]


def test_a_dropped_reply_after_commit_leaves_the_pool_created(gke, parent, sandbox):
    wait(gke, parent, gke.create_cluster(parent=parent, cluster=cluster(), timeout=10))
    sandbox.inject_fault("gke", method="POST", path="/nodePools$", drop=True, after_commit=True, count=1)
    with pytest.raises(Exception):
        gke.create_node_pool(parent=f"{parent}/clusters/saxml", node_pool=tpu_pool("tpu", "ct5lp-hightpu-4t", "2x2", 1),
                             timeout=10, retry=None)
    pool = gke.get_node_pool(name=f"{parent}/clusters/saxml/nodePools/tpu", timeout=10)
    assert pool.config.machine_type == "ct5lp-hightpu-4t"


def test_tpu_pools_become_nodes_with_gke_labels_taints_and_chips(gke, parent, sandbox):
    wait(gke, parent, gke.create_cluster(parent=parent, cluster=cluster(), timeout=10))
    name = f"{parent}/clusters/saxml"
    wait(gke, parent, gke.create_node_pool(parent=name, node_pool=tpu_pool("tpu", "ct5lp-hightpu-4t", "2x4", 2),
                                           timeout=10))
    nodes = [node for node in sandbox.control("GET", "gke", "nodes")["nodes"] if node["cluster"] == name]
    tpu_nodes = [node for node in nodes if node["pool"] == "tpu"]
    assert len(tpu_nodes) == 2 and len(nodes) == 4
    assert tpu_nodes[0]["labels"]["cloud.google.com/gke-tpu-accelerator"] == "tpu-v5-lite-podslice"
    assert tpu_nodes[0]["labels"]["cloud.google.com/gke-tpu-topology"] == "2x4"
    assert tpu_nodes[0]["labels"]["cloud.google.com/gke-nodepool"] == "tpu"
    assert tpu_nodes[0]["capacity"]["google.com/tpu"] == "4"
    assert {"key": "google.com/tpu", "value": "present", "effect": "NoSchedule"} in tpu_nodes[0]["taints"]
    assert len({node["name"] for node in nodes}) == 4 and all(node["name"].startswith("gke-saxml-") for node in nodes)
    wait(gke, parent, gke.set_node_pool_size(request={"name": f"{name}/nodePools/cpu", "node_count": 1}, timeout=10))
    after = [node for node in sandbox.control("GET", "gke", "nodes")["nodes"] if node["cluster"] == name]
    assert sorted(node["pool"] for node in after) == ["cpu", "tpu", "tpu"]
    wait(gke, parent, gke.delete_cluster(name=name, timeout=10))
    assert not [node for node in sandbox.control("GET", "gke", "nodes")["nodes"] if node["cluster"] == name]


@pytest.mark.parametrize("machine_type, topology, nodes, message", [
    ("ct5lp-hightpu-8t", "2x2", 1, 'TPU topology "2x2" is not supported for machine type ct5lp-hightpu-8t'),
    ("ct5lp-hightpu-1t", "2x4", 2, 'TPU topology "2x4" is not supported for machine type ct5lp-hightpu-1t'),
    ("ct5lp-hightpu-4t", "2x4", 1, "TPU topology 2x4 on ct5lp-hightpu-4t needs 2 node(s), got 1"),
    ("ct5lp-hightpu-4t", "4x4", 2, "needs 4 node(s), got 2"),
], ids=["8t-2x2", "1t-multihost", "2x4-one-node", "4x4-two-nodes"])
def test_tpu_combinations_gke_refuses_are_refused(gke, parent, machine_type, topology, nodes, message):
    wait(gke, parent, gke.create_cluster(parent=parent, cluster=cluster(), timeout=10))
    with pytest.raises(exceptions.BadRequest, match=re.escape(message)):
        gke.create_node_pool(parent=f"{parent}/clusters/saxml",
                             node_pool=tpu_pool("tpu", machine_type, topology, nodes), timeout=10)


def test_a_zone_without_v5e_refuses_a_tpu_pool(gke, unique_project):
    parent = f"projects/{unique_project()}/locations/us-central1-b"
    wait(gke, parent, gke.create_cluster(parent=parent, cluster=cluster(), timeout=10))
    with pytest.raises(exceptions.BadRequest, match='"ct5lp-hightpu-4t" is not available in zone "us-central1-b"'):
        gke.create_node_pool(parent=f"{parent}/clusters/saxml",
                             node_pool=tpu_pool("tpu", "ct5lp-hightpu-4t", "2x2", 1), timeout=10)


def test_an_injected_stockout_ends_the_operation_with_an_error_and_the_pool_in_error(gke, parent, sandbox):
    wait(gke, parent, gke.create_cluster(parent=parent, cluster=cluster(), timeout=10))
    sandbox.control("POST", "gke", "operation-failures", {"operationType": "CREATE_NODE_POOL", "kind": "stockout"})
    done = wait(gke, parent, gke.create_node_pool(parent=f"{parent}/clusters/saxml",
                                                  node_pool=tpu_pool("tpu", "ct5lp-hightpu-4t", "2x2", 1), timeout=10))
    assert "GCE_STOCKOUT" in done.error.message and done.error.code == 8
    pool = gke.get_node_pool(name=f"{parent}/clusters/saxml/nodePools/tpu", timeout=10)
    assert pool.status == container_v1.NodePool.Status.ERROR and "GCE_STOCKOUT" in pool.status_message


def test_an_auto_upgrade_moves_the_versions_out_of_band(gke, parent, sandbox):
    wait(gke, parent, gke.create_cluster(parent=parent, cluster=cluster(), timeout=10))
    name = f"{parent}/clusters/saxml"
    before = gke.get_cluster(name=name, timeout=10)
    upgrade = sandbox.control("POST", "gke", "auto-upgrade", {"cluster": name})
    assert upgrade["operationType"] == "UPGRADE_MASTER"
    wait(gke, parent, container_v1.Operation(name=upgrade["name"], status=upgrade["status"]))
    after = gke.get_cluster(name=name, timeout=10)
    assert after.current_master_version != before.current_master_version
    assert after.node_pools[0].version == after.current_master_version, "pools with autoUpgrade follow the master"
    assert after.etag != before.etag


def test_labels_need_the_current_fingerprint(gke, parent):
    wait(gke, parent, gke.create_cluster(parent=parent, cluster=cluster(), timeout=10))
    name = f"{parent}/clusters/saxml"
    fingerprint = gke.get_cluster(name=name, timeout=10).label_fingerprint
    wait(gke, parent, gke.set_labels(request={"name": name, "resource_labels": {"app": "sax"},
                                              "label_fingerprint": fingerprint}, timeout=10))
    labelled = gke.get_cluster(name=name, timeout=10)
    assert dict(labelled.resource_labels) == {"app": "sax"} and labelled.label_fingerprint != fingerprint
    with pytest.raises(exceptions.BadRequest, match="fingerprint mismatch"):
        gke.set_labels(request={"name": name, "resource_labels": {}, "label_fingerprint": fingerprint}, timeout=10)


def test_an_update_with_a_stale_etag_is_refused_aborted_and_one_with_the_current_etag_goes_through(gke, parent):
    """As container v1 documents ClusterUpdate.etag and UpdateNodePoolRequest.etag: ABORTED (HTTP 409) when stale."""
    wait(gke, parent, gke.create_cluster(parent=parent, cluster=cluster(), timeout=10))
    name = f"{parent}/clusters/saxml"
    planned = gke.get_cluster(name=name, timeout=10)
    regular = container_v1.ReleaseChannel(channel="REGULAR")
    wait(gke, parent, gke.update_cluster(name=name, update=container_v1.ClusterUpdate(
        desired_release_channel=regular, etag=planned.etag), timeout=10))
    with pytest.raises(exceptions.Conflict, match="is stale") as stale:
        gke.update_cluster(name=name, update=container_v1.ClusterUpdate(
            desired_release_channel=container_v1.ReleaseChannel(channel="RAPID"), etag=planned.etag), timeout=10)
    assert stale.value.response.json()["error"]["status"] == "ABORTED"
    assert gke.get_cluster(name=name, timeout=10).release_channel.channel.name == "REGULAR", "nothing overwritten"

    pool = gke.get_node_pool(name=f"{name}/nodePools/cpu", timeout=10)
    update = {"name": f"{name}/nodePools/cpu", "node_version": pool.version, "image_type": pool.config.image_type,
              "resource_labels": {"labels": {"team": "ml"}}}
    wait(gke, parent, gke.update_node_pool(request={**update, "etag": pool.etag}, timeout=10))
    with pytest.raises(exceptions.Conflict, match="is stale"):
        gke.update_node_pool(request={**update, "resource_labels": {"labels": {}}, "etag": pool.etag}, timeout=10)


def test_an_operation_held_by_a_long_latency_ends_when_released(gke, parent, sandbox):
    before = sandbox.control("GET", "gke", "operation-latency")
    sandbox.control("POST", "gke", "operation-latency", {"CREATE_CLUSTER": 600})
    try:
        operation = gke.create_cluster(parent=parent, cluster=cluster(), timeout=10)
    finally:
        sandbox.control("POST", "gke", "operation-latency", before)
    released = sandbox.control("POST", "gke", "operation-finish", {"name": f"{parent}/operations/{operation.name}"})
    assert released["status"] == "DONE"
    assert gke.get_cluster(name=f"{parent}/clusters/saxml", timeout=10).status == container_v1.Cluster.Status.RUNNING
    with pytest.raises(Exception, match="404"):
        sandbox.control("POST", "gke", "operation-finish", {"name": f"{parent}/operations/operation-none"})


def test_the_kube_endpoint_and_ca_come_from_the_launch_arguments(tmp_path):
    import base64

    from reconciler.sandbox.gke.kube_access import kube_access

    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    given = kube_access("https://127.0.0.1:6443", ca, tmp_path / "generated.pem")
    assert given.endpoint_of("projects/p/locations/l/clusters/a") == "127.0.0.1:6443"
    assert base64.b64decode(given.ca_certificate) == ca.read_bytes()
    made_up = kube_access(None, None, tmp_path / "generated.pem")
    assert base64.b64decode(made_up.ca_certificate).startswith(b"-----BEGIN CERTIFICATE-----")
    assert kube_access(None, None, tmp_path / "generated.pem").ca_certificate == made_up.ca_certificate, "kept"
    assert made_up.endpoint_of("a") != made_up.endpoint_of("b")
    with pytest.raises(ValueError, match="must be an https:// URL"):
        kube_access("http://127.0.0.1:6443", None, tmp_path / "generated.pem")


def test_a_kept_cluster_follows_the_apiserver_of_a_restarted_sandbox(tmp_path):
    """`saxctl sandbox down`, then `up` with the apiserver's old port taken: it comes back on another, and a cluster
    the GKE emulator kept must point at it, or every Kubernetes call of the next apply fails."""
    from reconciler.sandbox.base.store import ResourceStore
    from reconciler.sandbox.gke.kube_access import KubeAccess
    from reconciler.sandbox.gke.server import GkeServer

    key = "cluster/projects/p/locations/us-central1-a/clusters/kept"
    ResourceStore(tmp_path / "store.json").put(key, {"cluster": {
        "name": "kept", "endpoint": "127.0.0.1:1111", "masterAuth": {"clusterCaCertificate": "b2xk"},
        "nodePools": []}, "nodeCounts": {}})

    store = ResourceStore(tmp_path / "store.json")
    server = GkeServer(("127.0.0.1", 0), store, KubeAccess("127.0.0.1:2222", "bmV3"))
    try:
        kept = store.get(key).resource["cluster"]
    finally:
        server.server_close()
    assert (kept["endpoint"], kept["masterAuth"]["clusterCaCertificate"]) == ("127.0.0.1:2222", "bmV3")


def test_clusters_created_while_the_apiserver_proxy_is_handed_out_reach_the_apiserver_through_it(gke, parent,
                                                                                                 sandbox):
    """Chaos runs ask for it: a new cluster's endpoint is the proxy in front of the apiserver, which passes a TLS
    request through (and fails connections by its rules); once no longer handed out, new clusters get the
    apiserver's own address again."""
    import base64
    import http.client
    import ssl

    def version(endpoint: str, ca_certificate: str) -> int:
        host, port = endpoint.rsplit(":", 1)
        context = ssl.create_default_context(cadata=base64.b64decode(ca_certificate).decode())
        connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
        try:
            connection.request("GET", "/version")
            return connection.getresponse().status
        finally:
            connection.close()

    proxy = sandbox.control("POST", "gke", "apiserver-proxy", {"rules": [{"kind": "reset", "count": 1}]})
    try:
        wait(gke, parent, gke.create_cluster(parent=parent, cluster=cluster("proxied"), timeout=10))
        proxied = gke.get_cluster(name=f"{parent}/clusters/proxied", timeout=10)
        assert proxied.endpoint == proxy["endpoint"]
        with pytest.raises(OSError):  # the reset rule's one connection
            version(proxied.endpoint, proxied.master_auth.cluster_ca_certificate)
        # The apiserver's answer, through the proxy, and its certificate valid at the proxy's address.
        assert version(proxied.endpoint, proxied.master_auth.cluster_ca_certificate) in (200, 401, 403)
    finally:
        sandbox.control("DELETE", "gke", "apiserver-proxy")
    wait(gke, parent, gke.create_cluster(parent=parent, cluster=cluster("direct"), timeout=10))
    assert gke.get_cluster(name=f"{parent}/clusters/direct", timeout=10).endpoint != proxy["endpoint"]
