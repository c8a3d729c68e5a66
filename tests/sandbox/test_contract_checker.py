"""The contract checker itself must fail on what a real API never sends, naming the method and the field: else every
contract test that passes through it proves nothing."""

import pytest
import requests
from contract import Discovery

from reconciler.sandbox.base.api_errors import ApiError, ErrorFormat

CLUSTER_GET = "container.projects.locations.clusters.get"
A_CLUSTER = {"name": "c", "status": "RUNNING", "currentNodeCount": 2,
             "nodePools": [{"name": "cpu", "maxPodsConstraint": {"maxPodsPerNode": "110"}}]}


@pytest.fixture(scope="module")
def container():
    return Discovery.load("container", "v1")


def test_a_good_reply_passes(container):
    assert container.check_response(CLUSTER_GET, A_CLUSTER) == []


def test_an_unknown_field_in_a_reply_names_the_method_and_the_field(container):
    grown = {**A_CLUSTER, "nodePools": [{**A_CLUSTER["nodePools"][0], "tpuChips": 8}]}
    assert container.check_response(CLUSTER_GET, grown) == [
        f"{CLUSTER_GET} response Cluster.nodePools[0]: unknown property 'tpuChips'"]


def test_an_int64_sent_as_a_json_number_names_the_method_and_the_field(container):
    numeric = {**A_CLUSTER, "nodePools": [{"name": "cpu", "maxPodsConstraint": {"maxPodsPerNode": 110}}]}
    assert container.check_response(CLUSTER_GET, numeric) == [
        f"{CLUSTER_GET} response Cluster.nodePools[0].maxPodsConstraint.maxPodsPerNode: int64 sent as a JSON number "
        "110; the wire form is a string"]
    machine = {"name": "e2-standard-4", "id": 1234, "guestCpus": 4}
    assert Discovery.load("compute", "v1").check_response("compute.machineTypes.get", machine) == [
        "compute.machineTypes.get response MachineType.id: uint64 sent as a JSON number 1234; the wire form is a "
        "string"]


@pytest.mark.parametrize("body, problem", [
    ({"error": {"code": 404, "message": "gone", "errors": [{"reason": "notFound"}]}},
     "error.status missing (the canonical code name, e.g. NOT_FOUND)"),
    ({"error": {"code": 404, "message": "gone", "errors": [], "status": "not found"}},
     "error.status missing (the canonical code name, e.g. NOT_FOUND)"),
    ({"error": {"code": "404", "message": "gone", "errors": [], "status": "NOT_FOUND"}},
     "error.code missing or not int"),
    ({"message": "gone"}, "no 'error' object in {'message': 'gone'}"),
], ids=["no-status", "status-not-a-code-name", "code-as-string", "no-error-object"])
def test_an_error_reply_without_the_canonical_shape_names_the_method_and_the_field(body, problem):
    assert Discovery.check_error(CLUSTER_GET, body, canonical_status=True) == [f"{CLUSTER_GET} error reply: {problem}"]


@pytest.mark.parametrize("fmt", list(ErrorFormat))
@pytest.mark.parametrize("code", [404, 409, 412, 429, 503])
def test_the_emulators_error_bodies_pass_the_checker_of_their_format(fmt, code):
    body = ApiError(code).body(fmt)
    assert Discovery.check_error("any.method", body, canonical_status=fmt is ErrorFormat.RPC) == []
    if fmt is ErrorFormat.LEGACY:  # storage v1 and compute v1 send no status: the checker must see that it is absent
        assert Discovery.check_error("any.method", body, canonical_status=True) != []


@pytest.mark.parametrize("emulator, method, path, body, method_id", [
    ("gke", "GET", "/v1/projects/p/locations/us-central1-a/clusters/missing", None,
     "container.projects.locations.clusters.get"),
    ("resourcemanager", "POST", "/v3/projects/saxctl-contract:setIamPolicy", {"policy": {}, "colour": 1},
     "cloudresourcemanager.projects.setIamPolicy"),
    ("compute", "GET", "/compute/v1/projects/p/zones/us-central1-b/machineTypes/ct5lp-hightpu-4t", None,
     "compute.machineTypes.get"),
    ("gcs", "GET", "/storage/v1/b/saxctl-no-such-bucket", None, "storage.buckets.get"),
], ids=lambda value: value if value in ("gke", "resourcemanager", "compute", "gcs") else "")
def test_each_emulators_error_reply_has_the_shape_its_api_sends(sandbox, emulator, method, path, body, method_id):
    """Protobuf-served APIs (container, cloudresourcemanager) send error.status; storage and compute v1 do not."""
    reply = requests.request(method, sandbox.url(emulator) + path, json=body, timeout=10)
    assert reply.status_code in (400, 404), reply.text
    canonical = emulator in ("gke", "resourcemanager")
    assert Discovery.check_error(method_id, reply.json(), canonical_status=canonical) == []
    assert ("status" in reply.json()["error"]) is canonical
