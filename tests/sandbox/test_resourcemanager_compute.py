"""Resource Manager and Compute emulators through the real clients: policy etags, out-of-band edits, quotas."""

import pytest
from google.api_core import exceptions
from google.iam.v1 import policy_pb2

from reconciler.sandbox.resourcemanager.server import OWNER


def binding_members(policy) -> dict[str, list[str]]:
    return {binding.role: list(binding.members) for binding in policy.bindings}


def test_a_project_starts_with_a_foreign_owner_and_edits_move_the_etag(sandbox, unique_project):
    projects = sandbox.projects_client()
    resource = f"projects/{unique_project()}"
    policy = projects.get_iam_policy(request={"resource": resource}, timeout=10)
    assert binding_members(policy) == {"roles/owner": [OWNER]}
    policy.bindings.add(role="roles/storage.admin", members=["serviceAccount:sax@p.iam.gserviceaccount.com"])
    written = projects.set_iam_policy(request={"resource": resource, "policy": policy}, timeout=10)
    assert written.etag != policy.etag
    assert binding_members(projects.get_iam_policy(request={"resource": resource}, timeout=10)) == {
        "roles/owner": [OWNER], "roles/storage.admin": ["serviceAccount:sax@p.iam.gserviceaccount.com"]}


def test_a_concurrent_edit_makes_the_stale_write_aborted_and_a_reread_keeps_both(sandbox, unique_project):
    projects = sandbox.projects_client()
    project = unique_project()
    resource = f"projects/{project}"
    read = projects.get_iam_policy(request={"resource": resource}, timeout=10)
    sandbox.control("POST", "resourcemanager", "policy",
                    {"project": project, "add": [{"role": "roles/viewer", "member": "user:someone@example.com"}]})
    read.bindings.add(role="roles/storage.admin", members=["serviceAccount:sax@p.iam.gserviceaccount.com"])
    # Over REST google-api-core picks the exception by HTTP status: 409 is Conflict, ABORTED is in the body.
    with pytest.raises(exceptions.Conflict, match="There were concurrent policy changes") as stale:
        projects.set_iam_policy(request={"resource": resource, "policy": read}, timeout=10)
    assert stale.value.response.json()["error"]["status"] == "ABORTED"
    again = projects.get_iam_policy(request={"resource": resource}, timeout=10)
    again.bindings.add(role="roles/storage.admin", members=["serviceAccount:sax@p.iam.gserviceaccount.com"])
    projects.set_iam_policy(request={"resource": resource, "policy": again}, timeout=10)
    assert set(binding_members(projects.get_iam_policy(request={"resource": resource}, timeout=10))) == {
        "roles/owner", "roles/viewer", "roles/storage.admin"}


def test_a_touch_without_edits_still_moves_the_etag(sandbox, unique_project):
    projects = sandbox.projects_client()
    project = unique_project()
    before = projects.get_iam_policy(request={"resource": f"projects/{project}"}, timeout=10)
    touched = sandbox.control("POST", "resourcemanager", "policy", {"project": project})
    after = projects.get_iam_policy(request={"resource": f"projects/{project}"}, timeout=10)
    assert after.etag != before.etag and binding_members(after) == binding_members(before)
    assert touched["bindings"] == [{"role": "roles/owner", "members": [OWNER]}]


def test_an_update_mask_without_bindings_changes_no_binding(sandbox, unique_project):
    projects = sandbox.projects_client()
    resource = f"projects/{unique_project()}"
    policy = policy_pb2.Policy(bindings=[policy_pb2.Binding(role="roles/viewer", members=["user:x@example.com"])])
    projects.set_iam_policy(request={"resource": resource, "policy": policy, "update_mask": {"paths": ["etag"]}},
                            timeout=10)
    assert binding_members(projects.get_iam_policy(request={"resource": resource}, timeout=10)) == {
        "roles/owner": [OWNER]}


def test_project_get_by_id_and_by_number(sandbox):
    projects = sandbox.projects_client()
    by_id = projects.get_project(name="projects/saxctl-demo", timeout=10)
    assert by_id.project_id == "saxctl-demo" and by_id.state.name == "ACTIVE"
    assert projects.get_project(name=by_id.name, timeout=10).project_id == "saxctl-demo"


def test_machine_types_are_those_the_zone_offers(sandbox):
    machine_types = sandbox.machine_types_client()
    tpu = machine_types.get(project="saxctl-test", zone="us-west4-a", machine_type="ct5lp-hightpu-8t", timeout=10)
    assert (tpu.guest_cpus, tpu.memory_mb) == (224, 384 * 1024)
    with pytest.raises(exceptions.NotFound, match="was not found"):
        machine_types.get(project="saxctl-test", zone="us-east1-b", machine_type="ct5lp-hightpu-4t", timeout=10)
    names = [machine.name for machine in machine_types.list(project="saxctl-test", zone="us-east1-b", timeout=10)]
    assert "e2-standard-4" in names and not [name for name in names if name.startswith("ct5lp")]
    aggregated = dict(machine_types.aggregated_list(project="saxctl-test", timeout=10))
    assert "ct5lp-hightpu-4t" in [machine.name for machine in aggregated["zones/us-central1-a"].machine_types]


def test_quotas_are_as_configured_per_project(sandbox, unique_project):
    regions = sandbox.regions_client()
    project, other = unique_project(), unique_project()
    sandbox.control("POST", "compute", "quotas", {"region": "us-central1", "metric": "TPU_LITE_PODSLICE_V5",
                                                  "limit": 4, "usage": 4, "project": project})
    quota = {q.metric: q for q in regions.get(project=project, region="us-central1", timeout=10).quotas}
    assert (quota["TPU_LITE_PODSLICE_V5"].limit, quota["TPU_LITE_PODSLICE_V5"].usage) == (4, 4)
    untouched = {q.metric: q for q in regions.get(project=other, region="us-central1", timeout=10).quotas}
    assert untouched["TPU_LITE_PODSLICE_V5"].limit == 32 and untouched["TPU_LITE_PODSLICE_V5"].usage == 0
    no_tpu = {q.metric: q for q in regions.get(project=other, region="us-east1", timeout=10).quotas}
    assert no_tpu["TPU_LITE_PODSLICE_V5"].limit == 0, "no v5e zone in us-east1, no v5e quota"


def test_a_bad_quota_setting_is_refused_naming_the_field(sandbox):
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as refused:
        sandbox.control("POST", "compute", "quotas", {"region": "mars-1", "metric": "CPUS", "limit": 1})
    assert refused.value.code == 400 and "unknown region 'mars-1'" in refused.value.read().decode()


def test_a_seeded_fault_run_replays_the_same_faults(sandbox):
    import requests

    base = f"{sandbox.env['SAXCTL_COMPUTE_ENDPOINT']}/compute/v1/projects/replay/zones"
    paths = [f"{base}/{zone}/machineTypes/e2-standard-4" for zone in ("us-central1-a", "us-west4-a", "us-east1-b")]

    def run(seed: int) -> list[int]:
        sandbox.clear_faults("compute")
        sandbox.inject_fault("compute", path="/machineTypes/", status=503, probability=0.4, seed=seed)
        return [requests.get(path, timeout=10).status_code for _ in range(10) for path in paths]

    first = run(11)
    assert set(first) == {200, 503}
    assert run(11) == first, "the same seed on the same calls: the same faults"
    assert run(12) != first


def test_a_fault_rule_can_answer_with_its_own_body(sandbox):
    import requests

    body = {"error": {"code": 403, "message": "The billing account for the owning project is disabled.",
                      "errors": [{"domain": "global", "reason": "accountDisabled", "message": "disabled"}]}}
    sandbox.inject_fault("compute", path="/regions/", status=403, body=body, count=1)
    reply = requests.get(f"{sandbox.env['SAXCTL_COMPUTE_ENDPOINT']}/compute/v1/projects/p/regions/us-central1",
                         timeout=10)
    assert reply.status_code == 403 and reply.json() == body
