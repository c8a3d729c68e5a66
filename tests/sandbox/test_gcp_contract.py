"""CONTRACT: the GKE, Resource Manager and Compute emulators against container.v1, cloudresourcemanager.v3, compute.v1.

Routes are the verbs and paths of their discovery methods; every body they accept and return (plain JSON, string
enums, as a client without `$alt=json;enum-encoding=int` gets them) validates against the document's schemas with
no field outside them; errors have the shape and canonical status the real API sends.
"""

import re
import time

import pytest
import requests
from contract import Discovery

from reconciler.sandbox.compute.server import ROUTES as COMPUTE_ROUTES
from reconciler.sandbox.gke.server import ROUTES as GKE_ROUTES
from reconciler.sandbox.resourcemanager.server import ROUTES as RM_ROUTES

TIMEOUT_S = 10
APIS = {"gke": ("container", "v1", GKE_ROUTES), "resourcemanager": ("cloudresourcemanager", "v3", RM_ROUTES),
        "compute": ("compute", "v1", COMPUTE_ROUTES)}
ALL_ROUTES = [(emulator, route) for emulator, (_, _, routes) in APIS.items() for route in routes]


def discovery(emulator: str) -> Discovery:
    api, version, _ = APIS[emulator]
    return Discovery.load(api, version)


@pytest.mark.parametrize("emulator, route", ALL_ROUTES, ids=lambda value: getattr(value, "method_id", value))
def test_each_route_is_the_verb_and_path_of_its_discovery_method(emulator, route):
    document = discovery(emulator)
    method = document.method(route.method_id)
    assert method["httpMethod"] == route.verb
    sample = re.sub(r"\{[^}]+\}", "x1-sample", route.template)
    assert document.flat_path_pattern(route.method_id).match(sample), f"{route.method_id}: {sample} vs its flatPath"
    assert route.read == (route.verb == "GET" or route.method_id.endswith("getIamPolicy"))


def call(method: str, url: str, body: dict | None = None, **params) -> requests.Response:
    return requests.request(method, url, json=body, params=params, timeout=TIMEOUT_S)


def checked(document: Discovery, method_id: str, reply: requests.Response, status: int = 200) -> dict:
    assert reply.status_code == status, (method_id, reply.text)
    assert document.check_response(method_id, reply.json()) == [], method_id
    return reply.json()


def wait_done(base: str, parent: str, operation: dict) -> dict:
    deadline = time.monotonic() + 30
    while operation["status"] != "DONE":
        assert time.monotonic() < deadline, operation
        time.sleep(0.05)
        operation = call("GET", f"{base}/v1/{parent}/operations/{operation['name']}").json()
    return operation


def rpc_error(reply: requests.Response, code: int, status: str) -> dict:
    assert reply.status_code == code, reply.text
    error = reply.json()["error"]
    assert error["code"] == code and error["status"] == status and error["message"], error
    assert error["errors"][0]["reason"] and error["errors"][0]["message"] == error["message"]
    return error


CLUSTER_BODY = {"cluster": {"name": "contract", "releaseChannel": {"channel": "RAPID"},
                            "workloadIdentityConfig": {"workloadPool": "saxctl-contract.svc.id.goog"},
                            "resourceLabels": {"managed-by": "saxctl"},
                            "nodePools": [{"name": "cpu", "initialNodeCount": 2,
                                           "config": {"machineType": "e2-standard-4", "labels": {"role": "cpu"}}}]}}
TPU_POOL_BODY = {"nodePool": {"name": "tpu", "initialNodeCount": 2,
                              "config": {"machineType": "ct5lp-hightpu-4t",
                                         "taints": [{"key": "dedicated", "value": "sax", "effect": "NO_SCHEDULE"}]},
                              "placementPolicy": {"type": "COMPACT", "tpuTopology": "2x4"}}}


def test_every_reply_of_a_gke_lifecycle_matches_container_v1(sandbox):
    document = discovery("gke")
    base = sandbox.env["SAXCTL_GKE_ENDPOINT"]
    parent = "projects/saxctl-contract/locations/us-central1-a"
    name = f"{parent}/clusters/contract"
    for method_id, body in (("container.projects.locations.clusters.create", CLUSTER_BODY),
                            ("container.projects.locations.clusters.nodePools.create", TPU_POOL_BODY)):
        assert document.check_request(method_id, body) == []

    created = checked(document, "container.projects.locations.clusters.create",
                      call("POST", f"{base}/v1/{parent}/clusters", CLUSTER_BODY))
    assert created["operationType"] == "CREATE_CLUSTER" and created["status"] in ("PENDING", "RUNNING")
    busy = call("POST", f"{base}/v1/{name}/nodePools", TPU_POOL_BODY)
    assert "Please wait and try again once it is done" in rpc_error(busy, 400, "FAILED_PRECONDITION")["message"]
    assert document.check_response("container.projects.locations.operations.get",
                                   wait_done(base, parent, created)) == []
    again = call("POST", f"{base}/v1/{parent}/clusters", CLUSTER_BODY)
    assert rpc_error(again, 409, "ALREADY_EXISTS")["message"] == f"Already exists: {name}."

    pool_op = checked(document, "container.projects.locations.clusters.nodePools.create",
                      call("POST", f"{base}/v1/{name}/nodePools", TPU_POOL_BODY))
    wait_done(base, parent, pool_op)
    cluster = checked(document, "container.projects.locations.clusters.get", call("GET", f"{base}/v1/{name}"))
    assert cluster["status"] == "RUNNING" and cluster["currentNodeCount"] == 4
    assert re.fullmatch(r"\d+", cluster["nodePools"][1]["maxPodsConstraint"]["maxPodsPerNode"]), "int64 as string"
    for field in ("createTime",):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", cluster[field])
    checked(document, "container.projects.locations.clusters.list", call("GET", f"{base}/v1/{parent}/clusters"))
    checked(document, "container.projects.locations.clusters.list",
            call("GET", f"{base}/v1/projects/saxctl-contract/locations/-/clusters"))
    checked(document, "container.projects.locations.clusters.nodePools.list", call("GET", f"{base}/v1/{name}/nodePools"))
    pool = checked(document, "container.projects.locations.clusters.nodePools.get",
                   call("GET", f"{base}/v1/{name}/nodePools/tpu"))
    assert pool["placementPolicy"] == {"type": "COMPACT", "tpuTopology": "2x4"}

    labels = {"labelFingerprint": cluster["labelFingerprint"], "resourceLabels": {"managed-by": "saxctl", "a": "b"}}
    stale_labels = {**labels, "labelFingerprint": "00000000"}
    assert "fingerprint mismatch" in rpc_error(call("POST", f"{base}/v1/{name}:setResourceLabels", stale_labels), 400,
                                               "FAILED_PRECONDITION")["message"]
    wait_done(base, parent, checked(document, "container.projects.locations.clusters.setResourceLabels",
                                    call("POST", f"{base}/v1/{name}:setResourceLabels", labels)))
    stale = {"update": {"desiredReleaseChannel": {"channel": "REGULAR"}, "etag": cluster["etag"]}}
    assert document.check_request("container.projects.locations.clusters.update", stale) == []
    rpc_error(call("PUT", f"{base}/v1/{name}", stale), 409, "ABORTED")
    pool_update = {"nodeVersion": "-", "imageType": "COS_CONTAINERD", "labels": {"labels": {"tier": "tpu"}}}
    assert document.check_request("container.projects.locations.clusters.nodePools.update", pool_update) == []
    wait_done(base, parent, checked(document, "container.projects.locations.clusters.nodePools.update",
                                    call("PUT", f"{base}/v1/{name}/nodePools/cpu", pool_update)))
    resize = {"nodeCount": 3}
    assert document.check_request("container.projects.locations.clusters.nodePools.setSize", resize) == []
    wait_done(base, parent, checked(document, "container.projects.locations.clusters.nodePools.setSize",
                                    call("POST", f"{base}/v1/{name}/nodePools/cpu:setSize", resize)))
    listed = checked(document, "container.projects.locations.operations.list", call("GET", f"{base}/v1/{parent}/operations"))
    assert {op["operationType"] for op in listed["operations"]} >= {"CREATE_CLUSTER", "CREATE_NODE_POOL", "SET_LABELS",
                                                                    "UPGRADE_NODES", "SET_NODE_POOL_SIZE"}
    wait_done(base, parent, checked(document, "container.projects.locations.clusters.nodePools.delete",
                                    call("DELETE", f"{base}/v1/{name}/nodePools/tpu")))
    wait_done(base, parent, checked(document, "container.projects.locations.clusters.delete",
                                    call("DELETE", f"{base}/v1/{name}")))
    rpc_error(call("GET", f"{base}/v1/{name}"), 404, "NOT_FOUND")


@pytest.mark.parametrize("body, message", [
    ({"cluster": {"name": "x", "initialNodeCount": 1, "colour": "red"}},
     "Invalid JSON payload received. Unknown name \"colour\" at 'cluster': Cannot find field."),
    ({"cluster": {"name": "x", "initialNodeCount": "one"}}, "Invalid value at 'cluster.initial_node_count' (TYPE_INT32)"),
    ({"cluster": {"name": "Bad_Name", "initialNodeCount": 1}}, 'Invalid value for field "cluster.name": "Bad_Name"'),
    ({"cluster": {"name": "x"}}, "Cluster.initial_node_count must be greater than zero."),
], ids=["unknown-field", "wrong-type", "bad-name", "no-nodes"])
def test_bad_cluster_bodies_are_invalid_argument_with_the_field(sandbox, body, message):
    reply = call("POST", f"{sandbox.env['SAXCTL_GKE_ENDPOINT']}/v1/projects/saxctl-contract/locations/us-central1-a/"
                         "clusters", body)
    error = rpc_error(reply, 400, "INVALID_ARGUMENT")
    assert message in error["message"]
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"


def test_every_reply_of_resource_manager_matches_cloudresourcemanager_v3(sandbox, unique_project):
    document = discovery("resourcemanager")
    base = sandbox.env["SAXCTL_RESOURCEMANAGER_ENDPOINT"]
    project = unique_project()
    got = checked(document, "cloudresourcemanager.projects.get", call("GET", f"{base}/v3/projects/{project}"))
    assert got["projectId"] == project and re.fullmatch(r"projects/\d{12}", got["name"])
    assert checked(document, "cloudresourcemanager.projects.get", call("GET", f"{base}/v3/{got['name']}")) == got
    read = {"options": {"requestedPolicyVersion": 3}}
    assert document.check_request("cloudresourcemanager.projects.getIamPolicy", read) == []
    policy = checked(document, "cloudresourcemanager.projects.getIamPolicy",
                     call("POST", f"{base}/v3/projects/{project}:getIamPolicy", read))
    write = {"policy": {**policy, "bindings": [*policy["bindings"], {"role": "roles/storage.admin",
                                                                     "members": ["serviceAccount:a@b.com"]}]},
             "updateMask": "bindings,etag"}
    assert document.check_request("cloudresourcemanager.projects.setIamPolicy", write) == []
    written = checked(document, "cloudresourcemanager.projects.setIamPolicy",
                      call("POST", f"{base}/v3/projects/{project}:setIamPolicy", write))
    assert written["etag"] != policy["etag"]
    stale = rpc_error(call("POST", f"{base}/v3/projects/{project}:setIamPolicy", write), 409, "ABORTED")
    assert stale["message"].startswith("There were concurrent policy changes. Please retry the whole "
                                       "read-modify-write with exponential backoff.")
    unknown = call("POST", f"{base}/v3/projects/{project}:setIamPolicy", {"policy": {}, "colour": 1})
    rpc_error(unknown, 400, "INVALID_ARGUMENT")


def test_every_reply_of_compute_matches_compute_v1_and_errors_are_its_legacy_body(sandbox):
    document = discovery("compute")
    base = f"{sandbox.env['SAXCTL_COMPUTE_ENDPOINT']}/compute/v1/projects/saxctl-contract"
    machine = checked(document, "compute.machineTypes.get",
                      call("GET", f"{base}/zones/us-central1-a/machineTypes/ct5lp-hightpu-4t"))
    assert machine["guestCpus"] == 112 and re.fullmatch(r"\d+", machine["id"])
    checked(document, "compute.machineTypes.list", call("GET", f"{base}/zones/us-central1-a/machineTypes"))
    checked(document, "compute.machineTypes.aggregatedList", call("GET", f"{base}/aggregated/machineTypes"))
    region = checked(document, "compute.regions.get", call("GET", f"{base}/regions/us-central1"))
    metrics = {quota["metric"] for quota in region["quotas"]}
    assert "TPU_LITE_PODSLICE_V5" in metrics
    checked(document, "compute.regions.list", call("GET", f"{base}/regions"))
    checked(document, "compute.zones.get", call("GET", f"{base}/zones/us-east1-b"))
    checked(document, "compute.zones.list", call("GET", f"{base}/zones"))
    missing = call("GET", f"{base}/zones/us-central1-b/machineTypes/ct5lp-hightpu-4t")
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": 404, "message": missing.json()["error"]["message"], "errors": [
        {"message": "The resource 'projects/saxctl-contract/zones/us-central1-b/machineTypes/ct5lp-hightpu-4t' was "
                    "not found", "domain": "global", "reason": "notFound"}]}}


def test_an_injected_429_is_resource_exhausted_with_retry_after(sandbox):
    sandbox.inject_fault("gke", method="GET", path="/clusters$", status=429, count=1)
    reply = call("GET", f"{sandbox.env['SAXCTL_GKE_ENDPOINT']}/v1/projects/p/locations/us-central1-a/clusters")
    error = rpc_error(reply, 429, "RESOURCE_EXHAUSTED")
    assert reply.headers["Retry-After"] == "1" and error["details"][0]["reason"] == "RATE_LIMIT_EXCEEDED"
