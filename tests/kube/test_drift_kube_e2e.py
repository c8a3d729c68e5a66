"""`saxctl drift` on a whole deployment through the CLI: a Deployment scaled by hand and an IAM member removed by hand
are reported with who changed them and set back, with the Event on the ApplySet ConfigMap; a field another field
manager applied is never forced."""

from __future__ import annotations

from cli_runner import drift_report
from sax_world import HTTP_IMAGE
from sax_world import world  # noqa: F401 (a fixture)

STORAGE_ADMIN = "roles/storage.admin"


def entries(run) -> dict[tuple[str, str], dict]:
    return {(entry["address"], entry["field"]): entry for entry in drift_report(run)["drifts"]}


def policy_members(world, role: str) -> list[str]:
    (policy,) = [p["policy"] for p in world.sandbox.control("GET", "resourcemanager", "projects")["projects"]
                 if p["projectId"] == world.project]
    return next((b["members"] for b in policy["bindings"] if b["role"] == role), [])


def events_on_the_applyset(core, world) -> list:
    return core.list_namespaced_event(world.namespace,
                                      field_selector=f"involvedObject.name=saxctl-{world.spec_name}").items


def test_a_scaled_deployment_and_a_removed_member_are_reported_corrected_and_announced(world, apps, core):
    world.apply()
    member = f"serviceAccount:sa-{world.suffix}@{world.project}.iam.gserviceaccount.com"
    assert member in policy_members(world, STORAGE_ADMIN)
    world.kubectl("scale", "deployment/sax-admin-server", "--replicas=3")
    world.kubectl("set", "image", "deployment/sax-http", f"sax-http={HTTP_IMAGE}-edited")
    world.sandbox.control("POST", "resourcemanager", "policy", {
        "project": world.project, "add": [], "remove": [{"role": STORAGE_ADMIN, "member": member}]})

    reported = world.saxctl("drift", "--json")
    assert reported.code == 2, reported.text
    found = entries(reported)
    replicas = found[(f"kubernetes.deployment.{world.namespace}/sax-admin-server", "spec.replicas")]
    assert (replicas["desired"], replicas["live"], replicas["outcome"]) == (1, 3, "reported")
    assert (replicas["changed_by"]["manager"], replicas["changed_by"]["subresource"]) == ("kubectl", "scale")
    image = found[(f"kubernetes.deployment.{world.namespace}/sax-http",
                   "spec.template.spec.containers[name=sax-http].image")]
    assert (image["desired"], image["live"]) == (HTTP_IMAGE, f"{HTTP_IMAGE}-edited")
    assert image["changed_by"]["manager"] == "kubectl-set" and image["changed_by"]["time"], image
    binding = found[(f"iam.project_binding.{STORAGE_ADMIN}", "")]
    assert binding["outcome"] == "reported"
    [warning] = events_on_the_applyset(core, world)
    assert (warning.reason, warning.type) == ("DriftDetected", "Warning")
    assert "3 field(s) drifted from the spec" in warning.message and "spec.replicas" in warning.message

    corrected = world.saxctl("drift", "--correct", "--json", "--rollout-timeout", "120")
    assert corrected.code == 0, corrected.text + world.cluster_side()
    assert {e["outcome"] for e in entries(corrected).values()} == {"corrected"}
    assert apps.read_namespaced_deployment("sax-admin-server", world.namespace).spec.replicas == 1
    http = apps.read_namespaced_deployment("sax-http", world.namespace)
    assert http.spec.template.spec.containers[0].image == HTTP_IMAGE
    assert member in policy_members(world, STORAGE_ADMIN)
    reasons = sorted(event.reason for event in events_on_the_applyset(core, world))
    assert reasons == ["DriftCorrected", "DriftDetected"]
    assert world.saxctl("drift").code == 0


def test_a_field_another_field_manager_applied_is_left_never_forced(world, apps, tmp_path):
    world.apply()
    theirs = tmp_path / "theirs.json"
    theirs.write_text('{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "sax-model-server"}, '
                      '"spec": {"template": {"spec": {"containers": [{"name": "sax-model-server", '
                      '"image": "gitops/model:2"}]}}}}')
    world.kubectl("apply", "--server-side", "--field-manager=gitops", "--force-conflicts", "-f", str(theirs))

    left = world.saxctl("drift", "--correct", "--json")
    assert left.code == 2, left.text
    [entry] = [e for e in entries(left).values() if e["field"].endswith(".image")]
    assert entry["outcome"] == "left"
    assert entry["why"].startswith("held by field manager gitops (server-side apply)")
    image = apps.read_namespaced_deployment("sax-model-server", world.namespace).spec.template.spec.containers[0].image
    assert image == "gitops/model:2"
