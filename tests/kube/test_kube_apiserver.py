"""What only the real apiserver can say: the field sets it records for saxctl's manifests, a missing namespace found
at plan time, --kubeconfig reaching the same cluster, and a multi-host slice's model servers, one per host."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from sax_world import SaxWorld
from sax_world import world  # noqa: F401 (a fixture)

from reconciler.providers.kubernetes import access
from reconciler.providers.kubernetes.api import FIELD_MANAGER, KubeApi
from reconciler.providers.kubernetes.fields import field_set, managed_by
from reconciler.providers.kubernetes.kinds import describe, path_of
from reconciler.providers.kubernetes.manifests import kube_objects
from reconciler.spec.loader import load_spec


@pytest.mark.parametrize("shape", [{}, {"topology": "2x4", "nodes": 2}, {"exposure": "public"}],
                         ids=["single-host", "multi-host", "public"])
def test_the_field_set_saxctl_expects_is_the_one_the_apiserver_records(sandbox, namespace, tmp_path, shape):
    """Else every plan would take the slow path (a dry-run per object) although nothing changed."""
    api = KubeApi(access.from_kubeconfig(sandbox.env["SAXCTL_SANDBOX_KUBECONFIG"], None))
    spec = load_spec(str(SaxWorld(None, tmp_path, "k-fields", "my-project", namespace, "f1e2d3c4").write(**shape)))
    for member in kube_objects(spec):
        manifest = copy.deepcopy(member.manifest)
        answer = api.apply(path_of(manifest), manifest, describe(manifest), dry_run=True)
        assert managed_by(answer, FIELD_MANAGER) == field_set(manifest), describe(manifest)


def test_a_namespace_that_does_not_exist_is_found_by_the_plan_before_any_write(world):
    world.apply("--target", f"gke.node_pool.{world.pool}")
    elsewhere = dataclasses.replace(world, namespace=f"missing-{world.suffix}")
    elsewhere.write()
    planned = elsewhere.saxctl("plan")
    assert planned.code == 1, planned.text
    assert (f"namespace {elsewhere.namespace} does not exist in cluster {world.cluster}: create it first "
            f"(kubectl create namespace {elsewhere.namespace})") in planned.out
    assert elsewhere.saxctl("apply", "--auto-approve").code == 1, "nothing is applied"


def test_a_kubeconfig_reaches_the_same_objects_as_the_cluster_object(world, sandbox, tmp_path):
    world.apply()
    kubeconfig = sandbox.env["SAXCTL_SANDBOX_KUBECONFIG"]
    through = world.saxctl("plan", "--detailed-exitcode", "--kubeconfig", kubeconfig, "--context", "saxctl-sandbox")
    assert through.code == 0 and "No changes." in through.out, through.text
    wrong = world.saxctl("plan", "--kubeconfig", kubeconfig, "--context", "nowhere")
    assert wrong.code == 1 and "nowhere" in wrong.err and "Traceback" not in wrong.err, wrong.text
    missing = world.saxctl("plan", "--kubeconfig", str(tmp_path / "none.yaml"))
    assert missing.code == 1 and "no such file" in missing.err, missing.text


def test_a_multi_host_slice_runs_one_model_server_per_host(world, apps, core):
    world.write(topology="2x4", nodes=2)
    world.apply()
    model = apps.read_namespaced_stateful_set("sax-model-server", world.namespace)
    assert model.status.ready_replicas == 2
    pods = core.list_namespaced_pod(world.namespace, label_selector="app=sax-model-server").items
    assert sorted(pod.metadata.name for pod in pods) == ["sax-model-server-0", "sax-model-server-1"]
    hosts = {pod.spec.node_name for pod in pods}
    assert len(hosts) == 2 and all(world.pool in host for host in hosts), "one pod on each host of the pool"
    assert {pod.spec.hostname: pod.spec.subdomain for pod in pods} == {
        "sax-model-server-0": "sax-model-server", "sax-model-server-1": "sax-model-server"}
    assert world.saxctl("plan", "--detailed-exitcode").code == 0
