"""IAM under concurrent edits and failing calls: a policy changed between read and write, lost replies, 20% faults."""

from __future__ import annotations

import time

import pytest
from cli_runner import saxctl, saxctl_background
from iam_world import calls

from reconciler.sandbox.resourcemanager.server import OWNER

STORAGE_ADMIN = "roles/storage.admin"
LOG_WRITER = "roles/logging.logWriter"
WI_USER = "roles/iam.workloadIdentityUser"
IAM = "/google.iam.admin.v1.IAM/"
HELD_S = 3  # how long the sandbox holds saxctl's policy write, so the test can change the policy meanwhile


def _wait_for_reads(sandbox, emulator: str, path_end: str, count: int, timeout: float = 60) -> None:
    """Until the emulator has answered `count` reads of the policy (the plan's, then the apply's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for _, path, _ in calls(sandbox, emulator) if path.endswith(path_end)) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"saxctl never read the policy {count} times through {emulator}")


def _make_the_account_and_the_admin_bucket(world) -> None:
    """So that the next apply reads each policy exactly twice: in its plan, then in the change (no first-run
    bootstrap in between, which plans again)."""
    made = saxctl("apply", "--auto-approve", "--target", "gcs.bucket.admin", "--target",
                  "iam.service_account.sax-iam-sa", str(world.path), env=world.sandbox.env)
    assert made.code == 0, made.text


def _finish(running) -> str:
    out, err = running.communicate(timeout=120)
    assert running.returncode == 0, out + err
    return out + err


def test_a_project_policy_changed_between_read_and_write_keeps_both_changes(sandbox, world):
    alice = "user:alice@example.com"
    _make_the_account_and_the_admin_bucket(world)
    sandbox.reset_requests("resourcemanager")
    sandbox.inject_fault("resourcemanager", method="POST", path=r":setIamPolicy$", delay_s=HELD_S, count=1)
    running = saxctl_background("apply", "--auto-approve", str(world.path), env=sandbox.env)
    _wait_for_reads(sandbox, "resourcemanager", ":getIamPolicy", 2)
    world.edit_project_policy(add=[(STORAGE_ADMIN, alice)])  # the etag saxctl holds is stale now
    shown = _finish(running)
    assert "retrying" in shown and "There were concurrent policy changes" in shown
    assert world.project_policy() == {"roles/owner": [OWNER], STORAGE_ADMIN: sorted([alice, world.gsa_member])}
    statuses = [status for _, path, status in calls(sandbox, "resourcemanager") if path.endswith(":setIamPolicy")]
    assert statuses == [409, 200], "the stale write was refused, the write after a fresh read went through"


def test_an_account_policy_changed_between_read_and_write_keeps_both_changes(sandbox, world):
    other_ksa = world.ksa_member("other", "their-sa")
    _make_the_account_and_the_admin_bucket(world)
    sandbox.reset_requests("iam")
    sandbox.inject_fault("iam", path=r"SetIamPolicy$", delay_s=HELD_S, count=1)
    running = saxctl_background("apply", "--auto-approve", str(world.path), env=sandbox.env)
    _wait_for_reads(sandbox, "iam", "GetIamPolicy", 2)
    world.add_to_account_policy(WI_USER, other_ksa)
    shown = _finish(running)
    assert "retrying" in shown
    assert world.account_policy() == {WI_USER: sorted([other_ksa, world.ksa_member()])}
    statuses = [status for _, path, status in calls(sandbox, "iam") if path.endswith("SetIamPolicy")]
    assert statuses == ["OK", "ABORTED", "OK"], "ours held and refused as stale; theirs, then ours after a re-read"


def test_lost_replies_are_not_done_twice(sandbox, world):
    """Each write is committed and then its reply lost once: the re-apply finds what it did and does not redo it."""
    sandbox.inject_fault("iam", path=r"CreateServiceAccount$", status=503, after_commit=True, count=1)
    sandbox.inject_fault("iam", path=r"SetIamPolicy$", status=503, after_commit=True, count=1)
    sandbox.inject_fault("resourcemanager", method="POST", path=r":setIamPolicy$", status=503, after_commit=True,
                         count=1)
    sandbox.inject_fault("gcs", method="POST", path=r"^/upload/storage/v1/b/" + world.admin + "/o$", status=503,
                         after_commit=True, count=1)
    for emulator in ("iam", "resourcemanager"):
        sandbox.reset_requests(emulator)
    applied = saxctl("apply", "--auto-approve", str(world.path), env=sandbox.env)
    assert applied.code == 0, applied.text
    iam_calls = [(path.removeprefix(IAM), status) for _, path, status in calls(sandbox, "iam")]
    assert [c for c in iam_calls if c[0] == "CreateServiceAccount"] == [("CreateServiceAccount", "UNAVAILABLE"),
                                                                       ("CreateServiceAccount", "ALREADY_EXISTS")]
    assert [c for c in iam_calls if c[0] == "SetIamPolicy"] == [("SetIamPolicy", "UNAVAILABLE")], \
        "after the lost reply, a fresh read shows the member is there: no second write"
    rm_writes = [status for _, path, status in calls(sandbox, "resourcemanager") if path.endswith(":setIamPolicy")]
    assert rm_writes == [503]
    assert world.project_policy()[STORAGE_ADMIN] == [world.gsa_member]
    assert len(world.record()["members"]) == 2
    assert saxctl("plan", "--detailed-exitcode", str(world.path), env=sandbox.env).code == 0


@pytest.mark.parametrize("seed", [11, 12])
def test_twenty_percent_quota_and_unavailable_errors_converge_without_duplicates(sandbox, world, seed):
    world.write_spec(roles=(STORAGE_ADMIN, LOG_WRITER))
    for emulator in ("iam", "resourcemanager", "gcs"):
        sandbox.reset_requests(emulator)
        sandbox.inject_fault(emulator, status=429, probability=0.1, seed=seed)
        sandbox.inject_fault(emulator, status=503, probability=0.1, seed=seed + 100)
    applied = saxctl("apply", "--auto-approve", str(world.path), env={**sandbox.env, "SAXCTL_RETRY_ATTEMPTS": "12"})
    assert applied.code == 0, applied.text
    faulted = sum(1 for emulator in ("iam", "resourcemanager", "gcs") for entry in sandbox.requests(emulator)
                  if entry["status"] in (429, 503, "RESOURCE_EXHAUSTED", "UNAVAILABLE"))
    assert faulted > 0, "the faults fired"
    for emulator in ("iam", "resourcemanager", "gcs"):
        sandbox.clear_faults(emulator)

    iam_ok = [path.removeprefix(IAM) for _, path, status in calls(sandbox, "iam") if status == "OK"]
    assert iam_ok.count("CreateServiceAccount") == 1 and iam_ok.count("SetIamPolicy") == 1
    rm_ok = [path for _, path, status in calls(sandbox, "resourcemanager")
             if path.endswith(":setIamPolicy") and status == 200]
    assert len(rm_ok) == 2, "one write per project binding"
    accounts = list(sandbox.iam_client().list_service_accounts(name=f"projects/{world.project}", timeout=10))
    assert [account.email for account in accounts] == [world.email]
    assert world.project_policy() == {"roles/owner": [OWNER], STORAGE_ADMIN: [world.gsa_member],
                                      LOG_WRITER: [world.gsa_member]}
    assert world.account_policy() == {WI_USER: [world.ksa_member()]}
    assert len(world.record()["members"]) == 3
    assert saxctl("plan", "--detailed-exitcode", str(world.path), env=sandbox.env).code == 0
