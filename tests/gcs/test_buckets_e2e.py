"""saxctl over the sandbox's GCS, end to end through the CLI: plan, apply, drift, saved plans, destroy, lock."""

from __future__ import annotations

import json
import signal
import time

from cli_runner import saxctl, saxctl_background, wait_for_lock


def test_lifecycle_create_no_change_drift_fix_destroy(sandbox, spec, names, gcs):
    env = sandbox.env
    first = saxctl("plan", "--detailed-exitcode", str(spec), env=env)
    assert first.code == 2, first.text
    assert f"+ gcs.bucket.admin create  # bucket gs://{names['admin']} does not exist" in first.out

    applied = saxctl("apply", "--auto-approve", str(spec), env=env)
    assert applied.code == 0, applied.text
    assert "Apply complete! 2 created" in applied.out
    data = gcs.get_bucket(names["data"])
    assert data.labels == {"team": "ml", "managed-by": "saxctl", "saxctl-spec": names["spec"]}
    assert (data.location, data.iam_configuration.uniform_bucket_level_access_enabled) == ("US", True)
    assert list(gcs.list_blobs(names["admin"])) == [], "the lock must be released after apply"

    sandbox.reset_requests()
    quiet = saxctl("plan", "--detailed-exitcode", str(spec), env=env)
    assert quiet.code == 0, quiet.text
    assert "No changes." in quiet.out
    calls = [(r["method"], r["path"]) for r in sandbox.requests()]
    assert sorted(calls) == sorted([("GET", f"/storage/v1/b/{names['admin']}"), ("GET", f"/storage/v1/b/{names['data']}"),
                                    ("GET", "/storage/v1/b"),  # buckets that left the spec
                                    ("GET", f"/storage/v1/b/{names['admin']}/o"),  # checkpoints that left it
                                    ("GET", f"/storage/v1/b/{names['data']}/o"),
                                    ("GET", f"/download/storage/v1/b/{names['admin']}/o/saxctl%2Fiam-members.json"),
                                    ("GET", f"/storage/v1/b/{names['admin']}")]), \
        "one read per bucket; one list per kind of what may have left the spec; the record of IAM members saxctl " \
        "added (and the bucket read google-cloud-storage makes after that download)"

    data.labels = {**data.labels, "team": "changed-by-hand", "owner": "someone-else"}
    data.patch()
    drifted = saxctl("plan", "--detailed-exitcode", str(spec), env=env)
    assert drifted.code == 2, drifted.text
    assert '~ gcs.bucket.data update  # labels.team: "changed-by-hand" → "ml"' in drifted.out
    shown = saxctl("status", "--detailed-exitcode", str(spec), env=env)
    assert shown.code == 2
    rows = {line.split()[0]: line.split(None, 2)[2].strip() for line in shown.out.splitlines()[2:]}
    assert rows == {"gcs.bucket.admin": "in sync", "gcs.bucket.data": "drifted: labels.team"}

    fixed = saxctl("apply", "--auto-approve", str(spec), env=env)
    assert fixed.code == 0 and "1 updated" in fixed.out, fixed.text
    assert gcs.get_bucket(names["data"]).labels["team"] == "ml"
    assert gcs.get_bucket(names["data"]).labels["owner"] == "someone-else", "labels saxctl does not own stay"
    assert saxctl("plan", "--detailed-exitcode", str(spec), env=env).code == 0

    refused = saxctl("destroy", "--auto-approve", str(spec), env=env)
    assert refused.code == 1, "the admin bucket is the Sax root: deleting it needs a yes, even empty"
    assert (f"gs://{names['admin']} is the Sax root: its config, its address and the published models (sax-root/) "
            "go with it; so do saxctl's own records (none yet)") in refused.out
    assert gcs.lookup_bucket(names["admin"]) is not None and gcs.lookup_bucket(names["data"]) is not None
    gone = saxctl("destroy", "--auto-approve", "--force-delete-buckets", str(spec), env=env)
    assert gone.code == 0, gone.text
    assert [b.name for b in gcs.list_buckets() if b.name in names.values()] == []


def test_destroy_removes_only_buckets_this_spec_owns(sandbox, spec, names, gcs):
    assert saxctl("apply", "--auto-approve", str(spec), env=sandbox.env).code == 0
    data = gcs.get_bucket(names["data"])
    data.labels = {"team": "ml"}  # someone took the data bucket over: no saxctl mark any more
    data.patch()
    data.labels = {}
    gone = saxctl("destroy", "--auto-approve", "--force-delete-buckets", str(spec), env=sandbox.env)
    assert gone.code == 0, gone.text
    assert f"left alone: gs://{names['data']} has no saxctl mark" in gone.out
    assert gcs.lookup_bucket(names["admin"]) is None
    assert gcs.lookup_bucket(names["data"]) is not None


def test_destroy_deletes_a_bucket_that_left_the_spec_with_the_guards_of_a_destroy(sandbox, spec, names, gcs,
                                                                                   unique_name):
    assert saxctl("apply", "--auto-approve", str(spec), env=sandbox.env).code == 0
    gcs.bucket(names["data"]).blob("checkpoints/keep-me").upload_from_string(b"weights")
    renamed = unique_name("dat")
    spec.write_text(spec.read_text().replace(names["data"], renamed))  # never applied: the old one is still there

    refused = saxctl("destroy", "--auto-approve", str(spec), env=sandbox.env)
    assert refused.code == 1, refused.text
    assert f"- gcs.bucket.{names['data']} delete  # destroy gs://{names['data']} (no longer in the spec)" in refused.out
    assert (f"gs://{names['data']} holds 1 object(s) saxctl did not write (7 B: checkpoints/keep-me)"
            in refused.out), "what it holds guards it as any bucket a destroy deletes"
    assert "rerun with --force-delete-buckets" in refused.err
    assert gcs.lookup_bucket(names["data"]) is not None and gcs.lookup_bucket(names["admin"]) is not None

    gone = saxctl("destroy", "--auto-approve", "--force-delete-buckets", str(spec), env=sandbox.env)
    assert gone.code == 0, gone.text
    assert gcs.lookup_bucket(names["data"]) is None and gcs.lookup_bucket(names["admin"]) is None
    assert gcs.lookup_bucket(renamed) is None, "nothing is created by a destroy"


def test_existing_unowned_bucket_is_a_conflict_and_nothing_is_created(sandbox, spec, names, gcs):
    gcs.create_bucket(names["data"], location="US")
    blocked = saxctl("apply", "--auto-approve", str(spec), env=sandbox.env)
    assert blocked.code == 1, blocked.text
    assert f"gs://{names['data']} exists but saxctl did not create it" in blocked.out
    assert "rerun with --adopt" in blocked.out
    assert "the plan has 1 conflict(s) and cannot be applied" in blocked.err
    assert gcs.lookup_bucket(names["admin"]) is None, "a blocked plan must change nothing"

    adopted = saxctl("apply", "--auto-approve", "--adopt", str(spec), env=sandbox.env)
    assert adopted.code == 0, adopted.text
    assert gcs.get_bucket(names["data"]).labels["saxctl-spec"] == names["spec"]


def test_non_empty_bucket_is_deleted_only_with_the_flag(sandbox, spec, names, gcs):
    assert saxctl("apply", "--auto-approve", str(spec), env=sandbox.env).code == 0
    gcs.bucket(names["data"]).blob("checkpoints/keep-me").upload_from_string(b"weights")
    refused = saxctl("destroy", "--auto-approve", str(spec), env=sandbox.env)
    assert refused.code == 1
    assert (f"gs://{names['data']} holds 1 object(s) saxctl did not write (7 B: checkpoints/keep-me): they will be "
            "deleted with it") in refused.out, "the plan says what would be lost"
    assert "the plan has 2 blocked change(s) and cannot be applied" in refused.err, "the data and admin buckets"
    assert "rerun with --force-delete-buckets" in refused.err
    assert gcs.lookup_bucket(names["data"]) is not None
    assert gcs.lookup_bucket(names["admin"]) is not None, "a refused destroy changes nothing at all"
    forced = saxctl("destroy", "--auto-approve", "--force-delete-buckets", str(spec), env=sandbox.env)
    assert forced.code == 0, forced.text
    assert gcs.lookup_bucket(names["data"]) is None and gcs.lookup_bucket(names["admin"]) is None


def test_saved_plan_applies_exactly_and_is_refused_when_stale(sandbox, spec, names, gcs, tmp_path):
    assert saxctl("apply", "--auto-approve", str(spec), env=sandbox.env).code == 0
    spec.write_text(spec.read_text().replace("{team: ml}", "{team: research}"))
    plan_file = tmp_path / "plan.json"
    planned = saxctl("plan", str(spec), "-out", str(plan_file), env=sandbox.env)
    assert planned.code == 0, planned.text
    assert json.loads(plan_file.read_text())["summary"]["update"] == 1

    data = gcs.get_bucket(names["data"])
    data.versioning_enabled = True  # out of band, after the plan was made
    data.patch()
    refused = saxctl("apply", str(plan_file), env=sandbox.env)
    assert refused.code == 1
    assert "the saved plan is stale" in refused.err
    assert "gcs.bucket.data: metageneration 1 → metageneration 2" in refused.err
    assert gcs.get_bucket(names["data"]).labels["team"] == "ml", "a stale plan changes nothing"

    assert saxctl("plan", str(spec), "-out", str(plan_file), env=sandbox.env).code == 0
    applied = saxctl("apply", str(plan_file), env=sandbox.env)
    assert applied.code == 0, applied.text
    assert gcs.get_bucket(names["data"]).labels["team"] == "research"


def test_saved_plan_is_refused_when_the_spec_file_changed(sandbox, spec, tmp_path):
    plan_file = tmp_path / "plan.json"
    assert saxctl("plan", str(spec), "-out", str(plan_file), env=sandbox.env).code == 0
    spec.write_text(spec.read_text() + "\n# edited\n")
    refused = saxctl("apply", str(plan_file), env=sandbox.env)
    assert refused.code == 1 and "changed since the plan was made" in refused.err


def test_transient_errors_are_retried_and_shown(sandbox, spec, names, gcs):
    sandbox.inject_fault(method="POST", path=r"^/storage/v1/b$", status=503, count=2)
    applied = saxctl("apply", "--auto-approve", str(spec), env=sandbox.env)
    assert applied.code == 0, applied.text
    assert applied.err.count("retrying in") == 2
    assert gcs.lookup_bucket(names["data"]) is not None


def test_second_concurrent_apply_fails_fast_naming_the_holder(sandbox, spec, names):
    first = _apply_holding_the_lock(sandbox, spec, names, seconds=4)
    try:
        second = saxctl("apply", "--auto-approve", str(spec), env=sandbox.env)
        assert first.poll() is None, "the first apply must still be running while the second is refused"
        assert second.code == 1
        assert f"another run holds the lock gs://{names['admin']}/saxctl/lock.json" in second.err
        assert f"(pid {first.pid})" in second.err
        assert "saxctl force-unlock" in second.err
    finally:
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0, out + err


def test_a_crashed_apply_leaves_a_lock_that_force_unlock_clears(sandbox, spec, names, gcs):
    crashed = _apply_holding_the_lock(sandbox, spec, names, seconds=30)
    crashed.send_signal(signal.SIGKILL)
    crashed.wait(timeout=10)
    sandbox.clear_faults()

    blocked = saxctl("apply", "--auto-approve", str(spec), env=sandbox.env)
    assert blocked.code == 1
    assert f"It looks stale: process {crashed.pid} on this host is no longer running" in blocked.err
    lock_id = json.loads(gcs.bucket(names["admin"]).blob("saxctl/lock.json").download_as_bytes())["id"]

    wrong = saxctl("force-unlock", "not-the-id", str(spec), env=sandbox.env)
    assert wrong.code == 1 and f"has ID {lock_id}, not not-the-id" in wrong.err
    assert saxctl("force-unlock", lock_id, str(spec), env=sandbox.env).code == 0
    resumed = saxctl("apply", "--auto-approve", str(spec), env=sandbox.env)
    assert resumed.code == 0, resumed.text
    assert gcs.lookup_bucket(names["data"]) is not None


def test_ctrl_c_releases_the_lock(sandbox, spec, names, gcs):
    # Stalled long enough that the Ctrl-C surely lands while the insert is in flight (a loaded CI machine took
    # more than 2 s to deliver it), so what is tested is the wait for it, then the release. Started with SIGINT
    # ignored, as bash starts a background job (a CI step's `make test &`): Ctrl-C must stop it all the same.
    interrupted = _apply_holding_the_lock(sandbox, spec, names, seconds=15, sigint_ignored=True)
    interrupted.send_signal(signal.SIGINT)
    out, err = interrupted.communicate(timeout=60)
    assert interrupted.returncode == 130, out + err
    assert gcs.bucket(names["admin"]).get_blob("saxctl/lock.json") is None


def test_sigterm_releases_the_lock_and_the_next_apply_runs(sandbox, spec, names, gcs):
    """`kill` or a CI cancelling the job: like a Ctrl-C, the run waits for what is under way, releases, exits."""
    terminated = _apply_holding_the_lock(sandbox, spec, names, seconds=15)
    _wait_until_the_stall_is_met(sandbox)  # the data bucket's insert is in flight: the apply is mid-way
    terminated.send_signal(signal.SIGTERM)
    out, err = terminated.communicate(timeout=60)
    assert terminated.returncode == 130, out + err
    assert gcs.bucket(names["admin"]).get_blob("saxctl/lock.json") is None
    sandbox.clear_faults()
    following = saxctl("apply", "--auto-approve", str(spec), env=sandbox.env)
    assert following.code == 0, following.text
    assert gcs.lookup_bucket(names["data"]) is not None


def test_two_runs_creating_the_lock_at_once_one_wins_and_the_other_names_it(sandbox, spec, names, gcs):
    """Both lock writes are held in flight together, so neither run can have seen the other's lock before it wrote
    its own: only the create conditional on no object (ifGenerationMatch=0) decides, and it lets one through."""
    assert saxctl("apply", "--auto-approve", "--target", "gcs.bucket.admin", str(spec), env=sandbox.env).code == 0
    lock_writes = sandbox.inject_fault(method="POST", path=f"^/upload/storage/v1/b/{names['admin']}/o$", delay_s=10,
                                       count=2)
    # The winner stays on the data bucket's insert, holding the lock, until well after the loser's write landed.
    sandbox.inject_fault(method="POST", path=r"^/storage/v1/b$", delay_s=30, count=1)
    runs = [saxctl_background("apply", "--auto-approve", str(spec), env=sandbox.env) for _ in range(2)]
    try:
        _wait_until_spent(sandbox, lock_writes["id"])
        assert gcs.bucket(names["admin"]).get_blob("saxctl/lock.json") is None, \
            "both lock writes must be in flight before either lands"
    finally:
        results = [(run.pid, *run.communicate(timeout=120), run.returncode) for run in runs]
    codes = sorted(code for *_, code in results)
    assert codes == [0, 1], results
    (winner, *_), (_, _, loser_err, _) = sorted(results, key=lambda result: result[3])
    assert f"another run holds the lock gs://{names['admin']}/saxctl/lock.json" in loser_err
    assert f"(pid {winner})" in loser_err
    assert gcs.bucket(names["admin"]).get_blob("saxctl/lock.json") is None, "the winner released it"
    assert gcs.lookup_bucket(names["data"]) is not None


def test_a_lost_reply_to_a_heartbeat_is_not_taken_for_a_broken_lock(sandbox, spec, names, gcs):
    """The heartbeat's rewrite happens but its reply is lost (503 after commit): the client's retry then meets a new
    generation. The lock is still ours: the apply goes on, and releases it at the generation the lost write made."""
    running = _apply_holding_the_lock(sandbox, spec, names, seconds=10, heartbeat_s=0.2)
    lost = sandbox.inject_fault(method="POST", path=f"^/upload/storage/v1/b/{names['admin']}/o$", status=503,
                                after_commit=True, count=1)
    out, err = running.communicate(timeout=120)
    assert not [rule for rule in sandbox.faults() if rule["id"] == lost["id"]], "a heartbeat met the lost reply"
    assert running.returncode == 0, out + err
    assert "broken or changed by someone else" not in err
    assert gcs.bucket(names["admin"]).get_blob("saxctl/lock.json") is None, "released at the generation it had"


def test_a_lock_broken_by_force_unlock_mid_apply_is_reported_and_no_new_change_starts(sandbox, spec, names, gcs):
    running = _apply_holding_the_lock(sandbox, spec, names, seconds=10, heartbeat_s=0.2)
    lock_id = json.loads(gcs.bucket(names["admin"]).blob("saxctl/lock.json").download_as_bytes())["id"]
    for _ in range(20):  # the holder's heartbeat may rewrite the lock between force-unlock's read and its delete
        broken = saxctl("force-unlock", lock_id, str(spec), env=sandbox.env)
        if "changed while it was being broken" not in broken.err:
            break
    assert broken.code == 0, broken.text
    out, err = running.communicate(timeout=120)
    assert (f"Warning: the lock gs://{names['admin']}/saxctl/lock.json was broken or changed by someone else while "
            "this run held it; no new change will start") in err
    assert running.returncode == 130, out + err


def _apply_holding_the_lock(sandbox, spec, names, seconds: float, heartbeat_s: float | None = None,
                            sigint_ignored: bool = False):
    """An apply in the background, stalled for `seconds` on the data bucket's insert while it holds the lock."""
    assert saxctl("apply", "--auto-approve", "--target", "gcs.bucket.admin", str(spec), env=sandbox.env).code == 0
    sandbox.inject_fault(method="POST", path=r"^/storage/v1/b$", delay_s=seconds, count=1)
    env = sandbox.env if heartbeat_s is None else {**sandbox.env, "SAXCTL_LOCK_HEARTBEAT_S": str(heartbeat_s)}
    running = saxctl_background("apply", "--auto-approve", str(spec), env=env, sigint_ignored=sigint_ignored)
    wait_for_lock(sandbox, names["admin"])
    return running


def _wait_until_the_stall_is_met(sandbox, timeout: float = 30) -> None:
    """Until the stall _apply_holding_the_lock put on the bucket insert has met its request (the emulator spends a
    rule when a request matches it, before the delay)."""
    stall = [rule for rule in sandbox.faults() if rule["path"] == r"^/storage/v1/b$"]
    assert len(stall) <= 1
    if stall:
        _wait_until_spent(sandbox, stall[0]["id"], timeout)


def _wait_until_spent(sandbox, rule_id: int, timeout: float = 30) -> None:
    """Until the fault rule `rule_id` has met all the requests it was given (it is gone from the emulator's rules)."""
    deadline = time.monotonic() + timeout
    while any(rule["id"] == rule_id for rule in sandbox.faults()):
        assert time.monotonic() < deadline, f"fault rule {rule_id} still waits for its requests after {timeout} s"
        time.sleep(0.05)
