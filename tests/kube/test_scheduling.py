"""Workloads on kwok nodes, decided by the real scheduler and admission: what the Sax Deployments will meet on GKE."""

from kube_testkit import cpu_node, tpu_node, wait_for

from reconciler.sandbox.kube.nodes import CLUSTER_LABEL, cluster_label, cluster_namespace_annotations

IMAGE = "us-docker.pkg.dev/cloud-tpu-images/inference/sax-model-server:v1.1.0"  # kwok never pulls it
TPU_TOLERATION = {"key": "google.com/tpu", "operator": "Exists", "effect": "NoSchedule"}


def deployment(name: str, node_selector: dict, tpu_chips: int = 0) -> dict:
    container = {"name": name, "image": IMAGE}
    if tpu_chips:
        container["resources"] = {"requests": {"google.com/tpu": str(tpu_chips)},
                                  "limits": {"google.com/tpu": str(tpu_chips)}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"nodeSelector": node_selector, "containers": [container]}}}}


def pods_of(core, namespace: str, app: str) -> list:
    return core.list_namespaced_pod(namespace, label_selector=f"app={app}").items


def scheduling_failures(core, namespace: str, pod: str) -> list[str]:
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={pod}").items
    return [event.message for event in events if event.reason == "FailedScheduling"]


def rolled_out(apps, namespace: str, name: str) -> bool:
    status = apps.read_namespaced_deployment_status(name, namespace).status
    return status.available_replicas == 1 and status.updated_replicas == 1


def test_a_deployment_rolls_out_to_running_on_a_cpu_node(core, apps, namespace, node_sink, unique_name):
    cluster = unique_name("c")
    node_sink.sync(cluster, "cpu", [cpu_node(cluster, "cpu", 0)])
    # Pinned to this test's cluster, so that other tests' nodes never count.
    apps.create_namespaced_deployment(namespace, deployment("sax-admin-server", {CLUSTER_LABEL: cluster}))
    wait_for("the Deployment is available", lambda: rolled_out(apps, namespace, "sax-admin-server"))
    [pod] = pods_of(core, namespace, "sax-admin-server")
    assert pod.status.phase == "Running" and pod.spec.node_name == f"gke-{cluster}-cpu-0"
    assert pod.status.pod_ip, "kwok gives the pod an address from its pod CIDR"


def test_a_tpu_deployment_is_pending_with_the_schedulers_reason_until_a_tpu_node_exists_then_runs(
        core, apps, namespace, node_sink, unique_name):
    cluster = unique_name("c")
    # The published manifest's selector, plus this test's cluster so that other tests' nodes never count.
    selector = {"cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
                "cloud.google.com/gke-tpu-topology": "2x2", CLUSTER_LABEL: cluster}
    node_sink.sync(cluster, "cpu", [cpu_node(cluster, "cpu", 0)])  # a GKE cluster has its CPU nodes
    model_server = deployment("sax-model-server", selector, tpu_chips=4)
    assert "tolerations" not in model_server["spec"]["template"]["spec"]
    apps.create_namespaced_deployment(namespace, model_server)
    # The control: same selector, no TPU asked for, so nothing adds a toleration of the TPU taint.
    core.create_namespaced_pod(namespace, {"metadata": {"name": "no-tpu-request", "labels": {"app": "no-tpu"}},
                                           "spec": {"nodeSelector": selector,
                                                    "containers": [{"name": "main", "image": IMAGE}]}})

    [pending] = wait_for("the model server's pod exists", lambda: pods_of(core, namespace, "sax-model-server"))
    tolerations = [{"key": t.key, "operator": t.operator, "effect": t.effect} for t in pending.spec.tolerations]
    assert TPU_TOLERATION in tolerations, \
        "ExtendedResourceToleration gave the pod requesting google.com/tpu a toleration of the TPU taint"
    wait_for("the scheduler says why the pod is Pending: the CPU node is not a TPU node",
             lambda: any("didn't match Pod's node affinity/selector" in message
                         for message in scheduling_failures(core, namespace, pending.metadata.name)))
    assert core.read_namespaced_pod(pending.metadata.name, namespace).status.phase == "Pending"
    assert not rolled_out(apps, namespace, "sax-model-server")

    node_sink.sync(cluster, "tpu", [tpu_node(cluster, "tpu", 0)])
    wait_for("the model server rolls out on the TPU node", lambda: rolled_out(apps, namespace, "sax-model-server"))
    [running] = pods_of(core, namespace, "sax-model-server")
    assert running.status.phase == "Running" and running.spec.node_name == f"gke-{cluster}-tpu-0"

    wait_for("the control pod is refused the TPU node for its taint",
             lambda: any("untolerated taint" in message
                         for message in scheduling_failures(core, namespace, "no-tpu-request")))
    assert core.read_namespaced_pod("no-tpu-request", namespace).status.phase == "Pending"


def test_a_namespace_of_one_emulated_cluster_runs_its_pods_on_that_clusters_nodes_only(
        core, apps, node_sink, unique_name):
    """One apiserver holds every emulated cluster's nodes; a cluster's namespace keeps to its own, as on GKE."""
    ours, other = unique_name("c"), unique_name("c")
    node_sink.sync(other, "cpu", [cpu_node(other, "cpu", 0)])
    node_sink.sync(ours, "cpu", [cpu_node(ours, "cpu", 0)])
    namespace = unique_name("ns")
    core.create_namespace({"metadata": {"name": namespace, "annotations": cluster_namespace_annotations(ours)}})
    try:
        apps.create_namespaced_deployment(namespace, deployment("sax-http", {}))  # no selector of its own
        wait_for("the Deployment is available", lambda: rolled_out(apps, namespace, "sax-http"))
        [pod] = pods_of(core, namespace, "sax-http")
        assert pod.spec.node_selector == {CLUSTER_LABEL: cluster_label(ours)}, "PodNodeSelector gave it the cluster's"
        assert pod.spec.node_name == f"gke-{ours}-cpu-0"
    finally:
        core.delete_namespace(namespace)


def test_a_privileged_pod_is_admitted_as_on_gke(core, namespace):
    """An upstream apiserver refuses it ("disallowed by cluster policy") unless started with --allow-privileged."""
    admitted = core.create_namespaced_pod(namespace, {
        "metadata": {"name": "privileged"},
        "spec": {"containers": [{"name": "main", "image": IMAGE, "securityContext": {"privileged": True}}]}})
    assert admitted.spec.containers[0].security_context.privileged is True
    assert core.read_namespaced_pod("privileged", namespace).metadata.uid == admitted.metadata.uid
