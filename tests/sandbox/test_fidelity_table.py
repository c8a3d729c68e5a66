"""The fidelity table (make fidelity) is computed: every served method has a row, and the scan of the tests credits
an error case only where a test names both the method and the error."""

import textwrap

import pytest

from bench import fidelity
from reconciler.sandbox.compute.server import ROUTES as COMPUTE_ROUTES
from reconciler.sandbox.gcs.front import ROUTES as GCS_ROUTES
from reconciler.sandbox.gke.server import ROUTES as GKE_ROUTES
from reconciler.sandbox.resourcemanager.server import ROUTES as RM_ROUTES


@pytest.fixture(scope="module")
def table():
    return {row.method: row for row in fidelity.build()}


def test_every_method_an_emulator_serves_has_a_row(table):
    routed = {route.method_id for routes in (GKE_ROUTES, RM_ROUTES, COMPUTE_ROUTES, GCS_ROUTES) for route in routes
              if route.method_id}
    assert routed <= set(table)
    assert "/google.iam.admin.v1.IAM/SetIamPolicy" in table and "storage.objects.insert" in table


def test_what_saxctl_calls_is_found_in_its_code(table):
    for method in ("container.projects.locations.clusters.create", "compute.instanceGroupManagers.get",
                   "compute.regions.get", "storage.buckets.patch", "storage.objects.insert",
                   "/google.iam.admin.v1.IAM/CreateServiceAccount"):
        assert table[method].called, method
    for method in ("storage.buckets.update", "storage.objectAccessControls.insert", "compute.zones.list"):
        assert not table[method].called, f"{method}: saxctl does not send it"
    assert table["storage.objects.list"].served_by.startswith("fake-gcs-server")


def test_the_error_cases_the_repository_tests_exercise_are_credited(table):
    assert "412" in table["storage.objects.delete"].errors
    assert "ABORTED" in table["cloudresourcemanager.projects.setIamPolicy"].errors
    assert "409" in table["container.projects.locations.clusters.create"].errors
    assert "FAILED_PRECONDITION" in table["container.projects.locations.clusters.nodePools.create"].errors
    assert "429" in table["/google.iam.admin.v1.IAM/GetServiceAccount"].errors


def scanned(tmp_path, source: str) -> dict:
    (tmp_path / "test_case.py").write_text(textwrap.dedent(source))
    return {row.method: row for row in fidelity.build(tests=tmp_path)}


def test_a_statement_naming_a_client_call_and_an_error_credits_that_method_only(tmp_path):
    table = scanned(tmp_path, """
        def test_missing(client, regions):
            with pytest.raises(exceptions.NotFound):
                client.get_bucket("gone")
            assert {}.get("x") is None and regions.get(project="p", region="r").name
            assert 409 == 409
    """)
    assert table["storage.buckets.get"].errors == {"404"}
    assert table["compute.regions.get"].errors == set(), "the 409 is in a statement of its own"
    assert table["compute.machineTypes.get"].errors == set(), "dict.get is no API call"
    assert not any(row.validated for row in table.values() if row.method.startswith("storage.objects."))


def test_a_url_two_routes_answer_credits_neither_and_a_fault_credits_its_path(tmp_path):
    table = scanned(tmp_path, """
        def test_urls(sandbox, base, name, parent):
            rpc_error(call("PUT", f"{base}/v1/{name}", {}), 409, "ABORTED")
            busy = call("POST", f"{base}/v1/{parent}/nodePools", {})
            assert rpc_error(busy, 400, "FAILED_PRECONDITION")
            sandbox.inject_fault("gke", method="GET", path="/operations$", status=429)
    """)
    assert table["container.projects.locations.clusters.update"].errors == set()
    assert table["container.projects.locations.clusters.nodePools.update"].errors == set()
    assert table["container.projects.locations.clusters.nodePools.create"].errors == {"FAILED_PRECONDITION"}
    assert table["container.projects.locations.operations.list"].errors == {"429"}
    assert table["container.projects.locations.operations.get"].errors == set()


def test_each_case_of_a_list_of_replies_goes_with_its_own_request(tmp_path):
    table = scanned(tmp_path, """
        def test_cases(sandbox, name):
            endpoint = f"{sandbox.gcs_endpoint}/storage/v1/b"
            cases = [
                (requests.post(endpoint, json={"name": name}), 409),
                (requests.get(f"{endpoint}/{name}-missing"), "notFound"),
            ]
    """)
    assert table["storage.buckets.insert"].errors == {"409"}
    assert table["storage.buckets.get"].errors == {"404"}
