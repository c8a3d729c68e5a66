"""saxctl's IAM resources over the sandbox, end to end through the CLI: additive edits, ownership, drift, pruning."""

from __future__ import annotations

from cli_runner import saxctl
from iam_world import ACCOUNT, calls

from reconciler.sandbox.resourcemanager.server import OWNER

STORAGE_ADMIN = "roles/storage.admin"
LOG_WRITER = "roles/logging.logWriter"
WI_USER = "roles/iam.workloadIdentityUser"
IAM = "/google.iam.admin.v1.IAM/"


def apply(world, *flags: str):
    applied = saxctl("apply", "--auto-approve", *flags, str(world.path), env=world.sandbox.env)
    assert applied.code == 0, applied.text
    return applied


def plan(world, *flags: str):
    return saxctl("plan", "--detailed-exitcode", *flags, str(world.path), env=world.sandbox.env)


def changed_lines(run) -> list[str]:
    """The plan's change lines (`+ address create`, `~ ... update`, `- ... delete`), without their reasons."""
    return sorted(line.split("#")[0].strip() for line in run.out.splitlines()
                  if line.startswith(("  + ", "  ~ ", "  - ", "  -/+ ")))


def test_apply_makes_the_account_and_its_bindings_and_a_second_plan_only_reads(sandbox, world):
    applied = apply(world)
    assert "5 created" in applied.out, applied.out
    account = world.account()
    assert account.description == f"managed-by: saxctl; saxctl-spec: {world.spec_name}"
    assert world.project_policy()[STORAGE_ADMIN] == [world.gsa_member]
    assert world.account_policy() == {WI_USER: [world.ksa_member()]}
    assert world.recorded() == {(f"projects/{world.project}", STORAGE_ADMIN, world.gsa_member),
                                (world.account_name, WI_USER, world.ksa_member())}
    assert world.record()["spec"] == world.spec_name

    for emulator in ("iam", "resourcemanager", "gcs"):
        sandbox.reset_requests(emulator)
    quiet = plan(world)
    assert quiet.code == 0 and "No changes." in quiet.out, quiet.text
    assert sorted(path.removeprefix(IAM) for _, path, _ in calls(sandbox, "iam")) == [
        "GetIamPolicy", "GetServiceAccount", "ListServiceAccounts"], "one read per object, one list for pruning"
    assert calls(sandbox, "resourcemanager") == [("POST", f"/v3/projects/{world.project}:getIamPolicy", 200)]
    record_reads = [path for _, path, _ in calls(sandbox, "gcs") if "iam-members.json" in path]
    assert len(record_reads) == 1, "the ownership record is read once per plan"
    assert not [e for emulator in ("iam", "resourcemanager", "gcs") for e in sandbox.requests(emulator)
                if not e["read"]], "a plan writes nothing"


def test_foreign_members_survive_apply_and_destroy(sandbox, world):
    alice, bob = "user:alice@example.com", "user:bob@example.com"
    world.edit_project_policy(add=[(STORAGE_ADMIN, alice), ("roles/viewer", bob)])
    apply(world)
    assert world.project_policy() == {"roles/owner": [OWNER], STORAGE_ADMIN: sorted([alice, world.gsa_member]),
                                      "roles/viewer": [bob]}
    other_ksa = world.ksa_member("other", "their-sa")
    world.add_to_account_policy(WI_USER, other_ksa)
    assert plan(world).code == 0, "members saxctl did not add are not changes"

    gone = saxctl("destroy", "--auto-approve", "--target", "iam.workload_identity.default/sax-sa", str(world.path),
                  env=sandbox.env)
    assert gone.code == 0, gone.text
    assert world.account_policy() == {WI_USER: [other_ksa]}, "only saxctl's member left the account's policy"

    refused = saxctl("destroy", "--auto-approve", str(world.path), env=sandbox.env)
    assert refused.code == 1
    assert (f"the IAM policy of {world.email} holds 1 member(s) saxctl did not add ({other_ksa} as {WI_USER}): "
            "deleting the account drops them") in refused.out
    assert world.account() is not None and world.project_policy()[STORAGE_ADMIN] == sorted([alice, world.gsa_member])

    agreed = saxctl("destroy", "--auto-approve", "--allow-delete", f"iam.service_account.{ACCOUNT}",
                    "--force-delete-buckets", str(world.path), env=sandbox.env)
    assert agreed.code == 0, agreed.text
    assert world.account() is None
    assert world.project_policy() == {"roles/owner": [OWNER], STORAGE_ADMIN: [alice], "roles/viewer": [bob]}


def test_out_of_band_changes_show_in_the_plan_and_apply_repairs_them(sandbox, world):
    world.write_spec(roles=(STORAGE_ADMIN, LOG_WRITER))
    apply(world)
    world.edit_project_policy(remove=[(LOG_WRITER, world.gsa_member)])
    drifted = plan(world)
    assert drifted.code == 2
    assert changed_lines(drifted) == [f"+ iam.project_binding.{LOG_WRITER} create"], drifted.out
    apply(world)
    assert world.project_policy()[LOG_WRITER] == [world.gsa_member]
    assert plan(world).code == 0

    sandbox.iam_client().delete_service_account(name=world.account_name, timeout=10)
    deleted = plan(world)
    assert deleted.code == 2
    # IAM names a deleted account's grants deleted:serviceAccount:EMAIL?uid=ID: they are not the new account's.
    assert changed_lines(deleted) == [f"+ iam.project_binding.{LOG_WRITER} create",
                                      f"+ iam.project_binding.{STORAGE_ADMIN} create",
                                      f"+ iam.service_account.{ACCOUNT} create",
                                      "+ iam.workload_identity.default/sax-sa create"], deleted.out
    apply(world)
    assert world.account().description.startswith("managed-by: saxctl")
    assert world.project_policy()[STORAGE_ADMIN] == [world.gsa_member], "the dead account's grant is gone"
    assert world.account_policy() == {WI_USER: [world.ksa_member()]}
    assert plan(world).code == 0


def test_a_role_removed_from_the_spec_removes_only_saxctls_member(sandbox, world):
    carol = "user:carol@example.com"
    world.write_spec(roles=(STORAGE_ADMIN, LOG_WRITER))
    apply(world)
    world.edit_project_policy(add=[(LOG_WRITER, carol)])
    world.write_spec(roles=(STORAGE_ADMIN,))
    pruned = plan(world)
    assert pruned.code == 2
    assert changed_lines(pruned) == [f"- iam.project_binding.{LOG_WRITER} delete"]
    assert f"no longer in the spec: {world.gsa_member} in {LOG_WRITER} on projects/{world.project}" in pruned.out
    apply(world)
    assert world.project_policy()[LOG_WRITER] == [carol]
    assert world.project_policy()[STORAGE_ADMIN] == [world.gsa_member]
    assert (f"projects/{world.project}", LOG_WRITER, world.gsa_member) not in world.recorded()
    assert plan(world).code == 0


def test_a_renamed_kubernetes_service_account_moves_the_workload_identity_member(sandbox, world):
    apply(world)
    world.write_spec(ksa="sax-sa-2")
    moved = plan(world)
    assert changed_lines(moved) == ["+ iam.workload_identity.default/sax-sa-2 create",
                                    "- iam.workload_identity.default/sax-sa delete"], moved.out
    apply(world)
    assert world.account_policy() == {WI_USER: [world.ksa_member(name="sax-sa-2")]}
    assert plan(world).code == 0


def test_what_saxctl_did_not_make_is_a_conflict_until_adopted(sandbox, world):
    iam = sandbox.iam_client()
    iam.create_service_account(name=f"projects/{world.project}", account_id=ACCOUNT,
                               service_account={"display_name": "made by hand"}, timeout=10)
    world.edit_project_policy(add=[(STORAGE_ADMIN, world.gsa_member)])
    refused = saxctl("apply", "--auto-approve", str(world.path), env=sandbox.env)
    assert refused.code == 1
    assert f"{world.email} exists but saxctl did not create it" in refused.out
    assert (f"{world.gsa_member} in {STORAGE_ADMIN} on projects/{world.project} exists but saxctl did not create it"
            in refused.out)
    assert world.account().description == "" and world.record() is None, "a refused plan changes nothing"

    apply(world, "--adopt")
    assert world.account().description == f"managed-by: saxctl; saxctl-spec: {world.spec_name}"
    assert (f"projects/{world.project}", STORAGE_ADMIN, world.gsa_member) in world.recorded()
    assert plan(world).code == 0


def test_a_removed_identity_section_prunes_the_account_and_only_the_members_saxctl_added(sandbox, world):
    alice = "user:alice@example.com"
    apply(world)
    world.edit_project_policy(add=[(STORAGE_ADMIN, alice)])
    text = world.path.read_text()
    world.path.write_text(text[:text.index("identity:")])

    pruned = plan(world)
    assert pruned.code == 2, pruned.text
    assert changed_lines(pruned) == [f"- iam.project_binding.{STORAGE_ADMIN} delete",
                                     f"- iam.service_account.{ACCOUNT} delete",
                                     "- iam.workload_identity.default/sax-sa delete"], pruned.out
    apply(world)
    assert world.account() is None
    assert world.project_policy()[STORAGE_ADMIN] == [alice]
    assert world.recorded() == set()
    assert plan(world).code == 0
