"""IAM without a sandbox: the resources a spec makes, the additive policy edit, ownership marks, diffs."""

from __future__ import annotations

import pytest
from google.iam.v1 import policy_pb2
from google.type import expr_pb2

from reconciler.engine.graph import Graph
from reconciler.engine.resource import Action, Observed
from reconciler.providers import table
from reconciler.providers.gcs import bucket
from reconciler.providers.gke import addresses as gke_at
from reconciler.providers.iam import addresses as iam_at
from reconciler.providers.iam.bindings import Bindings
from reconciler.providers.iam.members import edited, members_of
from reconciler.providers.iam.resources import desired_resources, owner_in, ownership_mark
from reconciler.spec.loader import load_spec

SPEC = """\
apiVersion: saxctl/v1
kind: SaxDeployment
metadata: {name: gptj-demo}
project: {id: saxctl-demo, region: us-central1}
cluster:
  name: saxml
  location: us-central1-a
  releaseChannel: RAPID
  cpuNodes: {count: 2, machineType: e2-standard-4}
  tpuPools:
    - {name: tpu, machineType: ct5lp-hightpu-4t, topology: 2x2, nodes: 1}
buckets:
  admin: {name: saxctl-demo-sax-admin, location: US}
  data: {name: saxctl-demo-sax-data, location: US}
identity:
  kubernetesServiceAccount: {namespace: default, name: sax-sa}
  googleServiceAccount: {name: sax-iam-sa, projectRoles: [roles/storage.admin]}
"""
GSA = "serviceAccount:sax-iam-sa@saxctl-demo.iam.gserviceaccount.com"
KSA = "serviceAccount:saxctl-demo.svc.id.goog[default/sax-sa]"


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "spec.yaml"
    path.write_text(SPEC)
    return load_spec(str(path))


def by_address(resources):
    return {resource.address: resource for resource in resources}


def test_the_spec_makes_an_account_a_project_binding_per_role_and_a_workload_identity_binding(spec):
    resources = by_address(desired_resources(spec, managed_kinds=()))
    account = resources[iam_at.service_account("sax-iam-sa")]
    assert account.remote_id == "sax-iam-sa@saxctl-demo.iam.gserviceaccount.com"
    assert owner_in(account.fields["description"]) == "gptj-demo"
    role = resources[iam_at.project_binding("roles/storage.admin")]
    assert role.fields == {"members": (GSA,)} and role.list_keys == {"members": ""}
    assert set(role.depends_on) == {account.address, bucket.address("admin")}
    assert role.params == {"policy": "projects/saxctl-demo", "role": "roles/storage.admin"}
    wi = resources[iam_at.workload_identity("default", "sax-sa")]
    assert wi.fields == {"members": (KSA,)} and wi.inside == account.address
    assert wi.params["policy"] == "projects/saxctl-demo/serviceAccounts/sax-iam-sa@saxctl-demo.iam.gserviceaccount.com"
    assert wi.depends_on == (bucket.address("admin"),), "no cluster to wait for while the gke family is not managed"


def test_the_workload_identity_binding_waits_for_the_cluster_once_the_gke_family_is_managed(spec):
    resources = by_address(desired_resources(spec, managed_kinds={gke_at.CLUSTER, gke_at.NODE_POOL}))
    assert gke_at.cluster("saxml") in resources[iam_at.workload_identity("default", "sax-sa")].depends_on


def test_the_table_gives_iam_a_graph_that_holds_with_the_families_managed_today(spec):
    graph = Graph(table.desired_resources(spec))
    wi = iam_at.workload_identity("default", "sax-sa")
    assert wi in graph.order
    assert (gke_at.cluster("saxml") in graph.parents[wi]) == (gke_at.CLUSTER in table.managed_kinds())


def test_a_spec_without_identity_makes_no_iam_resources(spec):
    from dataclasses import replace

    assert desired_resources(replace(spec, identity=None), managed_kinds=()) == []


@pytest.mark.parametrize("description, owner", [
    (ownership_mark("gptj-demo"), "gptj-demo"),
    ("", None),
    ("made by hand", None),
    ("see: managed-by: saxctl; saxctl-spec: x", None),
])
def test_the_ownership_mark_is_read_back_only_from_saxctls_own_words(description, owner):
    assert owner_in(description) == owner


def policy(*bindings, etag=b"\x07abc") -> policy_pb2.Policy:
    made = policy_pb2.Policy(version=3, etag=etag)
    for role, members, *condition in bindings:
        made.bindings.add(role=role, members=members, **({"condition": condition[0]} if condition else {}))
    return made


@pytest.mark.parametrize("conditional_first", [True, False], ids=["conditional-first", "conditional-last"])
def test_an_edit_adds_to_the_role_and_keeps_every_other_member_binding_condition_and_the_etag(conditional_first):
    """The conditional binding holds the member removed and is listed first or last: neither the add nor the
    removal may touch it, whatever the order the policy lists its bindings in."""
    old = "serviceAccount:old@saxctl-demo.iam.gserviceaccount.com"
    only_weekdays = expr_pb2.Expr(expression="request.time.getDayOfWeek() < 5")
    conditional = ("roles/storage.admin", ["user:bob@example.com", old], only_weekdays)
    plain = ("roles/storage.admin", ["user:alice@example.com", old])
    read = policy(("roles/owner", ["user:owner@example.com"]), *([conditional, plain] if conditional_first
                                                                  else [plain, conditional]))
    written = edited(read, "roles/storage.admin", add={GSA}, remove={old})
    assert members_of(written, "roles/storage.admin") == {"user:alice@example.com", GSA}
    assert written.etag == read.etag and written.version == 3
    assert sorted((b.role, list(b.members), b.HasField("condition")) for b in written.bindings) == [
        ("roles/owner", ["user:owner@example.com"], False),
        ("roles/storage.admin", ["user:alice@example.com", GSA], False),
        ("roles/storage.admin", ["user:bob@example.com", old], True)]
    assert [b.condition for b in written.bindings if b.HasField("condition")] == [only_weekdays]
    assert members_of(read, "roles/storage.admin") == {"user:alice@example.com", old}, "the policy read is unchanged"


def test_an_edit_removes_only_the_given_members_with_their_deleted_forms_and_drops_an_emptied_binding():
    read = policy(("roles/storage.admin", [GSA, "user:alice@example.com"]),
                  ("roles/logging.logWriter", [f"deleted:{GSA}?uid=123456789"]))
    written = edited(read, "roles/storage.admin", add=set(), remove={GSA})
    assert members_of(written, "roles/storage.admin") == {"user:alice@example.com"}
    cleaned = edited(read, "roles/logging.logWriter", add=set(), remove={GSA})
    assert [b.role for b in cleaned.bindings] == ["roles/storage.admin"]


def test_adding_a_member_again_drops_the_grant_of_the_deleted_account_that_had_its_name():
    read = policy(("roles/storage.admin", [f"deleted:{GSA}?uid=1234", "deleted:serviceAccount:other@x?uid=5"]))
    written = edited(read, "roles/storage.admin", add={GSA}, remove=set())
    assert members_of(written, "roles/storage.admin") == {GSA, "deleted:serviceAccount:other@x?uid=5"}


def test_an_edit_that_changes_nothing_says_so():
    read = policy(("roles/storage.admin", [GSA]))
    assert edited(read, "roles/storage.admin", add={GSA}, remove={"user:never-there@example.com"}) is None


def test_a_new_role_gets_a_binding_of_its_own():
    written = edited(policy(("roles/owner", ["user:owner@example.com"])), "roles/storage.admin", add={GSA},
                     remove=set())
    assert [(b.role, list(b.members)) for b in written.bindings] == [("roles/owner", ["user:owner@example.com"]),
                                                                     ("roles/storage.admin", [GSA])]


def binding_observed(address, members, owner="gptj-demo"):
    return Observed(address, "x", {"members": list(members)}, "fp", owner)


@pytest.mark.parametrize("observed_members, action", [
    (None, Action.CREATE),
    ([GSA], Action.NOOP),
    (["serviceAccount:old@saxctl-demo.iam.gserviceaccount.com"], Action.UPDATE),
    (["serviceAccount:old@saxctl-demo.iam.gserviceaccount.com", GSA], Action.UPDATE),
])
def test_a_binding_compares_saxctls_members_as_a_set(spec, observed_members, action):
    resource = by_address(desired_resources(spec, managed_kinds=()))[iam_at.project_binding("roles/storage.admin")]
    observed = None if observed_members is None else binding_observed(resource.address, observed_members)
    change = Bindings(iam_at.PROJECT_BINDING, policies=None, record=None).diff(resource, observed)
    assert change.action is action
    if action is Action.UPDATE:
        assert change.reason.startswith("members: ")
