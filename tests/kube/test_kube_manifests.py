"""The Sax objects a spec makes (no API call): what the published manifests say, and what the pool and spec decide."""

from __future__ import annotations

import base64
import hashlib
import io

import pytest
from cli_runner import REPO, saxctl
from ruamel.yaml import YAML
from sax_world import ADMIN_IMAGE, HTTP_IMAGE, MODEL_IMAGE, SaxWorld

from reconciler.providers.kubernetes import ownership
from reconciler.providers.kubernetes.gitops import manifests_yaml
from reconciler.providers.kubernetes.manifests import kube_objects
from reconciler.providers.kubernetes.resources import desired_resources
from reconciler.spec.loader import load_spec


def objects_of(tmp_path, **shape) -> dict[tuple[str, str], dict]:
    """(kind, name) → manifest of a spec written with this pool shape / exposure / images."""
    world = SaxWorld(None, tmp_path, "k-test", "my-project", "sax", "abcd1234")
    spec = load_spec(str(world.write(**shape)))
    return {(o.kind, o.name): o.manifest for o in kube_objects(spec)}


def container(manifest: dict) -> dict:
    [only] = manifest["spec"]["template"]["spec"]["containers"]
    return only


def env(manifest: dict) -> dict:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container(manifest).get("env", ())}


@pytest.mark.parametrize("machine, topology, nodes, chip, chips", [
    ("ct5lp-hightpu-4t", "2x2", 1, "tpuv5e", "4"),
    ("ct5lp-hightpu-1t", "1x1", 1, "tpuv5e", "1"),
    ("ct5lp-hightpu-8t", "2x4", 1, "tpuv5e", "8"),
    ("ct4p-hightpu-4t", "2x2x1", 1, "tpuv4", "4"),
], ids=lambda value: str(value))
def test_the_model_server_takes_chip_topology_and_tpu_count_from_its_pool(tmp_path, machine, topology, nodes, chip,
                                                                          chips):
    model = objects_of(tmp_path, machine=machine, topology=topology, nodes=nodes)[("Deployment", "sax-model-server")]
    assert container(model)["args"] == ["--port=10001", "--sax_cell=/sax/test", f"--platform_chip={chip}",
                                        f"--platform_topology={topology}", "--jax_platforms=tpu"]
    assert container(model)["resources"] == {"requests": {"google.com/tpu": chips}, "limits": {"google.com/tpu": chips}}
    selector = model["spec"]["template"]["spec"]["nodeSelector"]
    assert selector["cloud.google.com/gke-tpu-topology"] == topology
    assert selector["cloud.google.com/gke-nodepool"] == "tpu-abcd1234"
    assert selector["cloud.google.com/gke-tpu-accelerator"] == (
        "tpu-v4-podslice" if machine.startswith("ct4p") else "tpu-v5-lite-podslice")


def test_the_servers_follow_the_published_manifests(tmp_path):
    objects = objects_of(tmp_path)
    admin, model, http = (objects[("Deployment", name)]
                          for name in ("sax-admin-server", "sax-model-server", "sax-http"))
    assert [container(m)["image"] for m in (admin, model, http)] == [ADMIN_IMAGE, MODEL_IMAGE, HTTP_IMAGE]
    assert [container(m)["ports"] for m in (admin, model, http)] == [
        [{"containerPort": port, "protocol": "TCP"}] for port in (10000, 10001, 8888)]
    assert env(admin) == {"GSBUCKET": "adm-k-test", "SAX_CELL": "/sax/test"}
    assert env(model) == env(http) == {"SAX_ROOT": "gs://adm-k-test/sax-root"}
    assert container(admin)["securityContext"] == container(model)["securityContext"] == {"privileged": True}
    assert "securityContext" not in container(http) and container(http)["imagePullPolicy"] == "Always"
    assert {m["spec"]["template"]["spec"]["serviceAccountName"] for m in (admin, model, http)} == {"sax-sa"}
    ksa = objects[("ServiceAccount", "sax-sa")]
    assert ksa["metadata"]["annotations"] == {
        "iam.gke.io/gcp-service-account": "sa-abcd1234@my-project.iam.gserviceaccount.com"}


def test_the_http_service_is_internal_unless_the_spec_says_public(tmp_path):
    internal = objects_of(tmp_path)[("Service", "sax-http-lb")]
    assert internal["metadata"]["annotations"] == {"networking.gke.io/load-balancer-type": "Internal"}
    assert internal["spec"] == {"type": "LoadBalancer", "selector": {"app": "sax-http"},
                                "ports": [{"port": 8888, "targetPort": 8888, "protocol": "TCP"}]}
    public = objects_of(tmp_path, exposure="public")[("Service", "sax-http-lb")]
    assert "annotations" not in public["metadata"]


def test_a_multi_host_slice_runs_one_model_server_per_host_that_knows_its_peers(tmp_path):
    objects = objects_of(tmp_path, topology="2x4", nodes=2)
    assert ("Deployment", "sax-model-server") not in objects
    model = objects[("StatefulSet", "sax-model-server")]
    assert model["spec"]["replicas"] == 2 and model["spec"]["podManagementPolicy"] == "Parallel"
    assert container(model)["resources"]["limits"] == {"google.com/tpu": "4"}, "each host has 4 of the 8 chips"
    assert "--platform_topology=2x4" in container(model)["args"]
    assert env(model)["TPU_WORKER_HOSTNAMES"] == \
        "sax-model-server-0.sax-model-server,sax-model-server-1.sax-model-server"
    assert env(model)["TPU_WORKER_ID"] == {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}}
    hosts = objects[("Service", "sax-model-server")]
    assert hosts["spec"]["clusterIP"] == "None" and model["spec"]["serviceName"] == "sax-model-server"


def test_every_member_carries_saxctls_mark_and_the_applyset_id_of_its_parent(tmp_path):
    objects = objects_of(tmp_path)
    parent = objects[("ConfigMap", "saxctl-k-test")]
    digest = hashlib.sha256(b"saxctl-k-test.sax.ConfigMap.").digest()
    set_id = f"applyset-{base64.urlsafe_b64encode(digest).decode().rstrip('=')}-v1"
    assert parent["metadata"]["labels"] == {ownership.MANAGED_BY: "saxctl", ownership.SPEC_LABEL: "k-test",
                                            ownership.APPLYSET_ID: set_id}
    assert parent["metadata"]["annotations"][ownership.CONTAINS_GROUP_KINDS] == "Deployment.apps,Service,ServiceAccount"
    members = [m for key, m in objects.items() if key[0] != "ConfigMap"]
    assert len(members) == 5
    for member in members:
        assert member["metadata"]["labels"] == {ownership.MANAGED_BY: "saxctl", ownership.SPEC_LABEL: "k-test",
                                                ownership.PART_OF: set_id}
        assert member["metadata"]["namespace"] == "sax"


def test_the_servers_wait_for_their_identity_bucket_and_nodes(tmp_path):
    world = SaxWorld(None, tmp_path, "k-test", "my-project", "sax", "abcd1234")
    resources = {r.address: r for r in desired_resources(load_spec(str(world.write())))}
    model = resources["kubernetes.deployment.sax/sax-model-server"]
    assert set(model.depends_on) >= {"kubernetes.service_account.sax/sax-sa", "gcs.bucket.admin",
                                     "iam.workload_identity.sax/sax-sa", "gke.node_pool.tpu-abcd1234",
                                     "kubernetes.applyset.sax/saxctl-k-test"}
    assert all(r.inside == "gke.cluster.c-abcd1234" for r in resources.values())
    assert "gke.node_pool.tpu-abcd1234" not in resources["kubernetes.deployment.sax/sax-http"].depends_on


def test_render_prints_the_objects_saxctl_applies_as_yaml_documents(tmp_path):
    world = SaxWorld(None, tmp_path, "k-test", "my-project", "sax", "abcd1234")
    spec = load_spec(str(world.write(topology="2x4", nodes=2)))
    documents = list(YAML(typ="safe").load_all(io.StringIO(manifests_yaml(spec, "spec.yaml"))))
    assert documents == [o.manifest for o in kube_objects(spec)]


def test_saxctl_render_prints_them_and_refuses_an_invalid_spec(tmp_path):
    rendered = saxctl("render", "specs/gptj-v5e-2x4-multihost.yaml")
    assert rendered.code == 0, rendered.text
    kinds = [document["kind"] for document in YAML(typ="safe").load_all(io.StringIO(rendered.out))]
    assert kinds == ["ConfigMap", "ServiceAccount", "Deployment", "Service", "StatefulSet", "Deployment", "Service"]
    broken = tmp_path / "broken.yaml"
    broken.write_text((REPO / "specs" / "gptj-v5e-2x2.yaml").read_text().replace("pool: tpu", "pool: tpus"))
    refused = saxctl("render", str(broken))
    assert refused.code == 3 and "sax.modelServer.pool" in refused.text and not refused.out, refused.text
