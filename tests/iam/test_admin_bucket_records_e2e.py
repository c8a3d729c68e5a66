"""saxctl's own records in the admin bucket (the IAM members it added) through a replace of that bucket, and through
an apply killed in the middle of one, end to end through the CLI on the sandbox."""

from __future__ import annotations

import json
import signal
import time

import pytest
from cli_runner import saxctl, saxctl_background

from reconciler.providers.gcs.records import MARK, STASH_PREFIX

WAIT_S = 60


def apply(world, *flags: str):
    applied = saxctl("apply", "--auto-approve", *flags, str(world.path), env=world.sandbox.env)
    assert applied.code == 0, applied.text
    return applied


def move_admin_to_eu(world) -> None:
    world.path.write_text(world.path.read_text().replace(f"admin: {{name: {world.admin}, location: US",
                                                         f"admin: {{name: {world.admin}, location: EU"))


def saxctl_objects(world, bucket: str) -> list[str]:
    return [blob.name for blob in world.sandbox.storage_client(world.project).list_blobs(bucket, prefix="saxctl/")]


def admin_labels(world) -> dict:
    return dict(world.sandbox.storage_client(world.project).get_bucket(world.admin).labels)


def test_replacing_the_admin_bucket_needs_a_yes_and_carries_saxctls_records(sandbox, world):
    apply(world)
    recorded = world.record()
    assert len(recorded["members"]) == 2
    admin = sandbox.storage_client(world.project).bucket(world.admin)
    admin.blob("saxctl/sax-models.json").upload_from_string(b'{"models": []}')  # a record of another provider
    move_admin_to_eu(world)

    refused = saxctl("apply", "--auto-approve", str(world.path), env=sandbox.env)
    assert refused.code == 1, "holding only saxctl's records, the admin bucket still needs a yes"
    assert (f"gs://{world.admin} is the Sax root: its config, its address and the published models (sax-root/) go "
            "with it; saxctl's own records (saxctl/iam-members.json, saxctl/sax-models.json) are carried to the new "
            "bucket") in refused.out
    assert "rerun with --allow-replace gcs.bucket.admin" in refused.err
    assert world.record() == recorded

    apply(world, "--allow-replace", "gcs.bucket.admin")
    assert sandbox.storage_client(world.project).get_bucket(world.admin).location == "EU"
    assert world.record() == recorded, "the record is in the new bucket, as it was"
    assert admin.blob("saxctl/sax-models.json").download_as_bytes() == b'{"models": []}', "every record is carried"
    assert saxctl_objects(world, world.admin) == ["saxctl/iam-members.json", "saxctl/sax-models.json"]
    assert saxctl_objects(world, world.data) == [], "no stash and no lock left behind"
    assert MARK[0] not in admin_labels(world)
    again = saxctl("plan", "--detailed-exitcode", str(world.path), env=sandbox.env)
    assert again.code == 0, "saxctl's members are still known as its own: " + again.text


@pytest.mark.parametrize("stalled", ["create", "restore"])
def test_an_apply_killed_between_the_stash_and_the_restore_loses_no_record(sandbox, world, stalled):
    """Killed with the records only in the stash (no admin bucket; or a new, empty one): the next run reads them
    there, says so, and restores them."""
    apply(world)
    recorded = world.record()
    move_admin_to_eu(world)
    # The step after the kill point is held until the kill (and then refused: it never takes effect).
    held = {"create": dict(method="POST", path=r"^/storage/v1/b$"),
            "restore": dict(method="POST", path=f"^/storage/v1/b/{world.data}/o/.+/copyTo/b/{world.admin}/o/")}
    rule = sandbox.inject_fault(**held[stalled], delay_s=WAIT_S, status=503)
    sandbox.reset_requests()
    killed = saxctl_background("apply", "--auto-approve", "--allow-replace", "gcs.bucket.admin", str(world.path),
                               env=sandbox.env)
    try:
        _wait_for(lambda: any(r["method"] == "DELETE" and r["path"] == f"/storage/v1/b/{world.admin}"
                              and r["status"] == 204 for r in sandbox.requests()), "the old admin bucket deleted")
        _wait_for(lambda: _hits(sandbox, rule["id"]) >= 1, f"the {stalled} request held")
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=WAIT_S)
    sandbox.clear_faults()
    assert [name.removeprefix(STASH_PREFIX) for name in saxctl_objects(world, world.data)
            if name.startswith(STASH_PREFIX)] == ["iam-members.json"], "the record waits in the stash"

    planned = saxctl("plan", "--detailed-exitcode", str(world.path), env=sandbox.env)
    assert planned.code == 2, planned.text
    assert (f"saxctl's records stashed in gs://{world.data}/{STASH_PREFIX} by a run that stopped while replacing "
            f"gs://{world.admin} are restored into it: saxctl/iam-members.json") in planned.out
    changed = [line.split("#")[0].strip() for line in planned.out.splitlines()
               if line.startswith(("  +", "  ~", "  -"))]
    assert changed == ["+ gcs.bucket.admin create" if stalled == "create" else "~ gcs.bucket.admin update"], \
        "saxctl's IAM members are its own while the record is in the stash: " + planned.out

    blocked = saxctl("apply", "--auto-approve", str(world.path), env=sandbox.env)
    assert blocked.code == 1 and f"It looks stale: process {killed.pid} on this host is no longer running" \
        in blocked.err, blocked.text
    lock_id = json.loads(sandbox.storage_client(world.project).bucket(world.data).blob("saxctl/lock.json")
                         .download_as_bytes())["id"]
    assert saxctl("force-unlock", lock_id, str(world.path), env=sandbox.env).code == 0
    apply(world)
    assert world.record() == recorded
    assert saxctl_objects(world, world.data) == [], "the stash is removed once restored"
    assert MARK[0] not in admin_labels(world)
    assert saxctl("plan", "--detailed-exitcode", str(world.path), env=sandbox.env).code == 0


def test_a_plan_on_an_empty_world_reads_nothing_inside_the_buckets_it_lacks(sandbox, world):
    sandbox.reset_requests()
    planned = saxctl("plan", str(world.path), env=sandbox.env)
    assert planned.code == 0, planned.text
    inside = [(r["method"], r["path"]) for r in sandbox.requests()
              if f"/b/{world.admin}/" in r["path"] or f"/b/{world.data}/" in r["path"]]
    assert inside == [], "no read of saxctl/iam-members.json (nor of any stash) in buckets that do not exist"


def _hits(sandbox, rule_id: int) -> int:
    """How many requests the rule has taken (a rule with a count leaves the list once spent)."""
    return next((rule["hits"] for rule in sandbox.faults() if rule["id"] == rule_id), 0)


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)
