"""Moving the Sax servers to another namespace through the real CLI, and a model server whose TPU chips another pod
holds: pruning finds this spec's ApplySets in every namespace, and a rollout that cannot be scheduled until someone
acts fails at once with the reason.
"""

from __future__ import annotations

from kube_testkit import TPU_TAINT, wait_for
from sax_world import world  # noqa: F401 (a fixture)

from reconciler.sandbox.kube.nodes import cluster_namespace_annotations

SERVERS = ["sax-admin-server", "sax-http", "sax-model-server"]


def deployment_names(apps, namespace: str) -> list[str]:
    return sorted(item.metadata.name for item in apps.list_namespaced_deployment(namespace).items)


def test_a_new_namespace_prunes_everything_of_the_old_one_before_the_model_server_needs_its_chips(world, apps, core):
    world.apply()
    old, new = world.namespace, f"{world.namespace}-b"
    core.create_namespace({"metadata": {"name": new,
                                        "annotations": cluster_namespace_annotations(world.cluster_name)}})
    try:
        world.namespace = new
        world.write()
        planned = world.saxctl("plan")
        assert planned.code == 0, planned.text
        for name in SERVERS:
            assert f"- kubernetes.deployment.{old}/{name} delete" in planned.out, planned.text
        assert f"- kubernetes.service.{old}/sax-http-lb delete" in planned.out
        assert f"- kubernetes.applyset.{old}/saxctl-{world.spec_name} delete" in planned.out

        world.apply()  # the pool's one node has 4 chips: the new model server runs once the old one has gone
        assert deployment_names(apps, old) == [] and core.list_namespaced_service(old).items == []
        assert f"saxctl-{world.spec_name}" not in [c.metadata.name for c in core.list_namespaced_config_map(old).items]
        assert deployment_names(apps, new) == SERVERS
        assert apps.read_namespaced_deployment("sax-model-server", new).status.available_replicas == 1
        assert world.saxctl("plan", "--detailed-exitcode").code == 0
    finally:
        world.namespace = old
        core.delete_namespace(new)


def test_a_model_server_whose_chips_another_pod_holds_fails_at_once_naming_it(world, core):
    world.apply("--target", f"gke.node_pool.{world.pool}")
    wait_for("the pool's node", lambda: core.list_node(
        label_selector=f"cloud.google.com/gke-nodepool={world.pool}").items)
    core.create_namespaced_pod(world.namespace, {
        "metadata": {"name": "squatter"},
        "spec": {"nodeSelector": {"cloud.google.com/gke-nodepool": world.pool},
                 "tolerations": [{"key": TPU_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}],
                 "containers": [{"name": "c", "image": "someone/else:1", "resources": {
                     "requests": {"google.com/tpu": "4"}, "limits": {"google.com/tpu": "4"}}}]}})
    wait_for("the squatter runs", lambda: core.read_namespaced_pod("squatter", world.namespace).status.phase
             == "Running")

    # The default rollout timeout is 15 minutes: the process's own timeout fails the test if apply waits for it.
    applied = world.saxctl("apply", "--auto-approve", timeout=240)
    assert applied.code == 1, applied.text
    assert f"Deployment {world.namespace}/sax-model-server cannot be scheduled" in applied.text
    assert (f"every google.com/tpu chip of pool {world.pool}'s 1 node(s) is held by pods nobody is removing "
            f"({world.namespace}/squatter)") in applied.text, applied.text
