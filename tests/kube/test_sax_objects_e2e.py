"""The Sax objects through the real CLI against the sandbox's real kube-apiserver: apply, no-op plans, drift,
conflicts, pruning, ownership, rollout waits and the public-exposure warning.

The cluster is created by saxctl itself on the GKE emulator, whose clusters carry the sandbox apiserver's endpoint and
CA: the provider reaches it exactly as it reaches GKE (endpoint + CA from the cluster object, a bearer token).
"""

from __future__ import annotations

from cli_runner import saxctl
from kube_testkit import wait_for
from sax_world import HTTP_IMAGE, MODEL_IMAGE, apiserver_writes, changed_lines, kube_requests
from sax_world import world  # noqa: F401 (a fixture)

from reconciler.providers.kubernetes.ownership import MANAGED_BY, PART_OF, SPEC_LABEL


def deployment_names(apps, namespace: str) -> list[str]:
    return sorted(item.metadata.name for item in apps.list_namespaced_deployment(namespace).items)


def field_managers(apps, namespace: str, name: str) -> dict[str, str]:
    """manager → operation of a Deployment's managedFields (status writes left out)."""
    live = apps.read_namespaced_deployment(name, namespace)
    return {entry.manager: entry.operation for entry in live.metadata.managed_fields if not entry.subresource}


def test_apply_then_a_plan_reads_each_object_once_and_writes_nothing(world, apps, core, sandbox):
    applied = world.apply()
    assert "Apply complete!" in applied.out
    assert deployment_names(apps, world.namespace) == ["sax-admin-server", "sax-http", "sax-model-server"]
    for name in ("sax-admin-server", "sax-http", "sax-model-server"):
        live = apps.read_namespaced_deployment(name, world.namespace)
        assert live.status.available_replicas == 1, f"{name}: apply waited for its rollout"
        assert live.metadata.labels[MANAGED_BY] == "saxctl" and live.metadata.labels[SPEC_LABEL] == world.spec_name
        assert field_managers(apps, world.namespace, name)["saxctl"] == "Apply"
    ksa = core.read_namespaced_service_account("sax-sa", world.namespace)
    assert ksa.metadata.annotations["iam.gke.io/gcp-service-account"] == \
        f"sa-{world.suffix}@{world.project}.iam.gserviceaccount.com"
    service = core.read_namespaced_service("sax-http-lb", world.namespace)
    assert service.metadata.annotations["networking.gke.io/load-balancer-type"] == "Internal"
    assert service.spec.type == "LoadBalancer" and service.spec.ports[0].port == 8888

    before = apiserver_writes(sandbox)
    again = world.saxctl("plan", "--detailed-exitcode")
    after = apiserver_writes(sandbox)
    assert again.code == 0 and "No changes." in again.out, again.text
    requests = kube_requests(again)
    assert {verb for verb, _ in requests} == {"GET"}, "a no-op plan never applies, not even a dry-run"
    # One GET per object (the ApplySet record, the service account, three Deployments, the Service), one LIST of
    # this spec's ApplySet records in every namespace and one LIST per kind a record lists, to find what left the spec.
    assert len(requests) == 6 + 1 + 3, requests
    assert after == before, "the apiserver saw no write and no dry-run"


def test_an_image_changed_in_the_spec_updates_only_that_deployment(world, apps):
    world.apply()
    generations = {name: apps.read_namespaced_deployment(name, world.namespace).metadata.generation
                   for name in deployment_names(apps, world.namespace)}
    world.write(http_image=HTTP_IMAGE.replace("v1.0.0", "v1.0.1"))

    planned = world.saxctl("plan", "--detailed-exitcode")
    assert planned.code == 2, planned.text
    assert changed_lines(planned) == [f"~ kubernetes.deployment.{world.namespace}/sax-http update"]
    assert 'containers[name=sax-http].image: "' + HTTP_IMAGE + '" → "' + HTTP_IMAGE.replace("v1.0.0", "v1.0.1") \
        in planned.out
    world.apply()
    assert apps.read_namespaced_deployment("sax-http", world.namespace).spec.template.spec.containers[0].image \
        == HTTP_IMAGE.replace("v1.0.0", "v1.0.1")
    after = {name: apps.read_namespaced_deployment(name, world.namespace).metadata.generation
             for name in deployment_names(apps, world.namespace)}
    assert after == {**generations, "sax-http": generations["sax-http"] + 1}, "the other Deployments are untouched"


def test_kubectl_scale_out_of_band_is_drift_the_plan_shows_and_apply_repairs(world, apps):
    world.apply()
    world.kubectl("scale", "deployment/sax-admin-server", "--replicas=3")

    drifted = world.saxctl("plan", "--detailed-exitcode")
    assert drifted.code == 2, drifted.text
    assert changed_lines(drifted) == [f"~ kubernetes.deployment.{world.namespace}/sax-admin-server update"]
    assert "spec.replicas: 3 → 1" in drifted.out
    assert "changed out of band by kubectl (scale subresource): saxctl sets it back" in drifted.out
    repaired = world.apply()
    forced = [path for verb, path in kube_requests(repaired) if verb == "PATCH" and "force=true" in path
              and "dryRun" not in path]
    # Server-side apply counts kubectl's field as a conflict: forced once, pinned to the version whose only
    # conflict is the drift the plan showed.
    assert len(forced) == 1 and "/deployments/sax-admin-server?" in forced[0], forced
    assert apps.read_namespaced_deployment("sax-admin-server", world.namespace).spec.replicas == 1
    assert world.saxctl("plan", "--detailed-exitcode").code == 0


def test_deployments_that_left_the_spec_are_pruned_and_the_rest_kept(world, apps, core):
    world.apply()
    world.write(sax=False)

    planned = world.saxctl("plan")
    assert changed_lines(planned) == [f"- kubernetes.deployment.{world.namespace}/{name} delete" for name in
                                      ("sax-admin-server", "sax-http", "sax-model-server")] + [
        f"- kubernetes.service.{world.namespace}/sax-http-lb delete"], planned.text
    assert "no longer in the spec" in planned.out
    world.apply()
    assert deployment_names(apps, world.namespace) == []
    assert [s.metadata.name for s in core.list_namespaced_service(world.namespace).items] == []
    assert core.read_namespaced_service_account("sax-sa", world.namespace).metadata.labels[PART_OF], "kept"
    assert world.saxctl("plan", "--detailed-exitcode").code == 0


def test_a_same_named_object_saxctl_did_not_make_is_refused_until_adopt(world, apps):
    apps.create_namespaced_deployment(world.namespace, {
        "metadata": {"name": "sax-http"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "sax-http"}},
                 "template": {"metadata": {"labels": {"app": "sax-http"}},
                              "spec": {"containers": [{"name": "sax-http", "image": "someone/else:1"}]}}}})
    world.apply("--target", f"gke.node_pool.{world.pool}")  # the cluster, so that the Deployment is read

    refused = world.saxctl("apply", "--auto-approve")
    assert refused.code == 1, refused.text
    assert f"kubernetes.deployment.{world.namespace}/sax-http" in refused.out
    assert "exists but saxctl did not create it" in refused.out and "--adopt" in refused.out
    assert apps.read_namespaced_deployment("sax-http", world.namespace).spec.template.spec.containers[0].image \
        == "someone/else:1", "nothing was changed"

    world.apply("--adopt")
    adopted = apps.read_namespaced_deployment("sax-http", world.namespace)
    assert adopted.metadata.labels[SPEC_LABEL] == world.spec_name
    assert adopted.spec.template.spec.containers[0].image == HTTP_IMAGE and adopted.spec.replicas == 1
    assert world.saxctl("plan", "--detailed-exitcode").code == 0


def test_a_field_another_manager_applied_is_a_conflict_until_force_conflicts(world, apps, tmp_path):
    world.apply()
    theirs = tmp_path / "theirs.json"
    theirs.write_text('{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sax-model-server"}, '
                      '"spec": {"template": {"spec": {"containers": [{"name": "sax-model-server", '
                      '"image": "gitops/model:2"}]}}}}')
    world.kubectl("apply", "--server-side", "--field-manager=gitops", "--force-conflicts", "-f", str(theirs))

    planned = world.saxctl("plan")
    assert planned.code == 1, planned.text
    assert "Would fail" in planned.out
    assert ("spec.template.spec.containers[name=sax-model-server].image applied by field manager gitops "
            "(server-side apply): rerun with --force-conflicts") in planned.out
    refused = world.saxctl("apply", "--auto-approve")
    assert refused.code == 1
    assert apps.read_namespaced_deployment("sax-model-server", world.namespace).spec.template.spec.containers[0] \
        .image == "gitops/model:2"

    forced = world.saxctl("plan", "--force-conflicts", "--detailed-exitcode")
    assert forced.code == 2 and "taken over (--force-conflicts)" in forced.out, forced.text
    world.apply("--force-conflicts")
    assert apps.read_namespaced_deployment("sax-model-server", world.namespace).spec.template.spec.containers[0] \
        .image == MODEL_IMAGE
    assert world.saxctl("plan", "--detailed-exitcode").code == 0, "saxctl owns the image again"


def test_a_tpu_pool_without_nodes_leaves_the_model_server_pending_and_apply_says_why(world, core):
    world.apply()
    world.kubectl("delete", "nodes", "-l", f"cloud.google.com/gke-nodepool={world.pool}")
    wait_for("the pool's nodes are gone", lambda: not core.list_node(
        label_selector=f"cloud.google.com/gke-nodepool={world.pool}").items)
    world.write(model_image=MODEL_IMAGE.replace("v1.1.0", "v1.1.1"))

    applied = world.saxctl("apply", "--auto-approve", "--rollout-timeout", "8")
    assert applied.code == 1, applied.text
    assert f"Deployment {world.namespace}/sax-model-server is not ready after 8 s" in applied.text
    assert "sax-model-server: Pending: 0/" in applied.text
    assert "didn't match Pod's node affinity/selector" in applied.text
    assert f"pool {world.pool} has 0 nodes" in applied.text


def test_public_exposure_warns_that_the_http_api_has_no_authentication(world):
    world.write(exposure="public")
    planned = world.saxctl("plan")
    assert planned.code == 0, planned.text
    block = planned.out.split(f"kubernetes.service.{world.namespace}/sax-http-lb create", 1)[1]
    assert "⚠ the Sax HTTP API has no authentication" in block.split("\n\n", 1)[0]
    world.write()
    internal = world.saxctl("plan")
    assert internal.code == 0 and "no authentication" not in internal.out, internal.text


def test_objects_of_a_cluster_that_does_not_exist_yet_are_planned_with_no_kubernetes_call(world, sandbox):
    before = apiserver_writes(sandbox)
    planned = world.saxctl("plan")
    after = apiserver_writes(sandbox)
    assert planned.code == 0, planned.text
    created = [line for line in changed_lines(planned) if line.startswith("+ kubernetes.")]
    assert len(created) == 6, created
    assert f"gke.cluster.{world.cluster} does not exist yet: created after it" in planned.out
    assert kube_requests(planned) == [], "saxctl made no Kubernetes request"
    assert after == before, "the apiserver served no write nor dry-run"


def test_a_saved_plan_applies_exactly_its_repair_and_is_refused_once_the_object_moved(world, apps, tmp_path):
    world.apply()
    world.kubectl("scale", "deployment/sax-http", "--replicas=2")
    saved = tmp_path / "repair.json"
    assert world.saxctl("plan", "-out", str(saved)).code == 0
    world.kubectl("scale", "deployment/sax-http", "--replicas=3")
    stale = saxctl("apply", str(saved), env=world.sandbox.env)
    assert stale.code == 1 and f"kubernetes.deployment.{world.namespace}/sax-http" in stale.err, stale.text
    assert "stale" in stale.err
    assert apps.read_namespaced_deployment("sax-http", world.namespace).spec.replicas == 3, "nothing was applied"

    assert world.saxctl("plan", "-out", str(saved)).code == 0
    applied = saxctl("apply", str(saved), env=world.sandbox.env)
    assert applied.code == 0, applied.text
    assert apps.read_namespaced_deployment("sax-http", world.namespace).spec.replicas == 1


def test_destroy_deletes_the_sax_objects_before_their_cluster(world, apps, core):
    world.apply()
    destroyed = world.saxctl("destroy", "--auto-approve", "--force-delete-buckets")
    assert destroyed.code == 0, destroyed.text
    order = [line.split(": Deleted after")[0] for line in destroyed.err.splitlines() if ": Deleted after" in line]
    assert f"kubernetes.service_account.{world.namespace}/sax-sa" in order, destroyed.text
    assert order.index(f"kubernetes.service_account.{world.namespace}/sax-sa") < order.index(
        f"gke.cluster.{world.cluster}"), order
    assert deployment_names(apps, world.namespace) == []
    assert [s.metadata.name for s in core.list_namespaced_service(world.namespace).items] == []
    assert "saxctl-" + world.spec_name not in [c.metadata.name for c in
                                               core.list_namespaced_config_map(world.namespace).items]
