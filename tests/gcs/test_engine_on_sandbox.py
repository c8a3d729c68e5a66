"""The engine's guarantees through the real CLI and the GCS provider on the sandbox: targets, replacement guards,
the lock around plan and apply (and where it lives while its bucket is replaced), pruning, conditional updates."""

from __future__ import annotations

import json
import re
import time

import pytest
from cli_runner import buckets_spec, saxctl, saxctl_background, wait_for_lock

from reconciler.engine.resource import Action
from reconciler.errors import ConflictError


def applied(spec, sandbox, *flags):
    run = saxctl("apply", "--auto-approve", *flags, str(spec), env=sandbox.env)
    assert run.code == 0, run.text
    return run


def test_destroy_target_takes_the_target_and_never_what_it_depends_on(sandbox, spec, names, gcs):
    applied(spec, sandbox)
    gone = saxctl("destroy", "--auto-approve", "--target", "gcs.bucket.data", str(spec), env=sandbox.env)
    assert gone.code == 0, gone.text
    assert "Destroy complete! 1 deleted" in gone.out
    assert gcs.lookup_bucket(names["data"]) is None
    assert gcs.lookup_bucket(names["admin"]) is not None


def test_a_replacement_that_would_delete_data_is_refused_at_plan_time_until_allowed(sandbox, spec, names, gcs):
    applied(spec, sandbox)
    gcs.bucket(names["data"]).blob("checkpoints/weights.bin").upload_from_string(b"x" * 2048)
    moved = spec.read_text().replace(f"data: {{name: {names['data']}, location: US", f"data: {{name: {names['data']}, "
                                     "location: EU")
    spec.write_text(moved)
    sandbox.reset_requests()
    refused = saxctl("apply", "--auto-approve", str(spec), env=sandbox.env)
    assert refused.code == 1
    assert (f"gs://{names['data']} holds 1 object(s) saxctl did not write (2.0 KiB: checkpoints/weights.bin): "
            "they will be deleted with it") in refused.out
    assert "rerun with --allow-replace gcs.bucket.data to replace it anyway" in refused.err
    writes = [(r["method"], r["path"]) for r in sandbox.requests() if r["method"] not in ("GET", "HEAD")]
    bucket_level = re.compile(r"^/storage/v1/b(/[^/]+)?$")
    assert [w for w in writes if names["data"] in w[1] or bucket_level.match(w[1])] == [], "nothing changed"
    assert len(writes) == 2, f"only the lock was taken and released: {writes}"
    assert gcs.get_bucket(names["data"]).location == "US"

    replaced = applied(spec, sandbox, "--allow-replace", "gcs.bucket.data")
    assert "agreed: --allow-replace gcs.bucket.data" in replaced.out
    assert gcs.get_bucket(names["data"]).location == "EU"
    assert list(gcs.list_blobs(names["data"])) == []


def test_a_plan_saved_with_allow_replace_applies_the_replace_without_the_flag_again(sandbox, spec, names, gcs,
                                                                                     tmp_path):
    applied(spec, sandbox)
    gcs.bucket(names["data"]).blob("checkpoints/weights.bin").upload_from_string(b"x" * 2048)
    spec.write_text(spec.read_text().replace(f"data: {{name: {names['data']}, location: US",
                                             f"data: {{name: {names['data']}, location: EU"))
    plan_file = tmp_path / "plan.json"
    planned = saxctl("plan", "--allow-replace", "gcs.bucket.data", str(spec), "-out", str(plan_file), env=sandbox.env)
    assert planned.code == 0, planned.text
    assert "agreed: --allow-replace gcs.bucket.data" in planned.out

    replaced = saxctl("apply", str(plan_file), env=sandbox.env)
    assert replaced.code == 0, replaced.text
    assert gcs.get_bucket(names["data"]).location == "EU"
    assert list(gcs.list_blobs(names["data"])) == [], "the replace deleted what the plan said it would"


def test_replacing_the_admin_bucket_moves_the_lock_out_of_it_first(sandbox, spec, names, gcs):
    applied(spec, sandbox)
    gcs.bucket(names["admin"]).blob("sax-root/test/admin.json").upload_from_string(b"{}")
    spec.write_text(spec.read_text().replace(f"admin: {{name: {names['admin']}, location: US",
                                             f"admin: {{name: {names['admin']}, location: EU"))
    refused = saxctl("plan", str(spec), env=sandbox.env)
    assert refused.code == 1
    assert (f"gs://{names['admin']} is the Sax root: its config, its address and the published models (sax-root/) "
            f"go with it; gs://{names['admin']} holds 1 object(s) saxctl did not write "
            "(2 B: sax-root/test/admin.json), deleted with it; saxctl's own records (none yet) are carried to the new "
            "bucket") in refused.out

    replaced = applied(spec, sandbox, "--allow-replace", "gcs.bucket.admin")
    assert f"the lock moved to gs://{names['data']}/saxctl/lock.json while gcs.bucket.admin is deleted or " \
           "replaced" in replaced.err
    assert gcs.get_bucket(names["admin"]).location == "EU"
    assert [b.name for b in gcs.list_blobs(names["admin"])] == [], "the lock was released in the new bucket"
    assert [b.name for b in gcs.list_blobs(names["data"])] == [], "and in the temporary home"


def test_a_saved_plan_waiting_for_the_lock_is_checked_after_it_gets_it(sandbox, spec, names, gcs, tmp_path):
    """The freshness check must run under the lock: a run that held it changed the bucket meanwhile."""
    applied(spec, sandbox)
    plan_file = tmp_path / "plan.json"
    spec.write_text(spec.read_text().replace("{team: ml}", "{team: research}"))
    assert saxctl("plan", str(spec), "-out", str(plan_file), env=sandbox.env).code == 0

    other = tmp_path / "other.yaml"
    other.write_text(spec.read_text().replace("{team: research}", "{team: other}"))
    sandbox.inject_fault(method="PATCH", path=f"/storage/v1/b/{names['data']}$", delay_s=8, count=1)
    holder = saxctl_background("apply", "--auto-approve", str(other), env=sandbox.env)
    wait_for_lock(sandbox, names["admin"])
    waiter = saxctl_background("apply", "--lock-timeout", "60", str(plan_file), env=sandbox.env)
    waiter_out, waiter_err = waiter.communicate(timeout=120)
    holder_out, holder_err = holder.communicate(timeout=120)
    assert holder.returncode == 0, holder_out + holder_err
    assert "waiting up to 60 s for the lock: another run holds the lock" in waiter_err, waiter_err
    assert waiter.returncode == 1, waiter_out + waiter_err
    assert "the saved plan is stale" in waiter_err and "gcs.bucket.data: metageneration" in waiter_err
    assert gcs.get_bucket(names["data"]).labels["team"] == "other", "the stale plan changed nothing"


def test_a_bucket_that_left_the_spec_is_pruned_and_one_holding_data_only_when_allowed(sandbox, spec, names, gcs,
                                                                                      unique_name):
    applied(spec, sandbox)
    renamed = unique_name("dat2")
    spec.write_text(spec.read_text().replace(names["data"], renamed))
    pruned = saxctl("plan", "--detailed-exitcode", str(spec), env=sandbox.env)
    assert pruned.code == 2, pruned.text
    assert f"- gcs.bucket.{names['data']} delete  # no longer in the spec: gs://{names['data']} will be deleted" \
        in pruned.out

    gcs.bucket(names["data"]).blob("keep.txt").upload_from_string(b"keep")
    blocked = saxctl("apply", "--auto-approve", str(spec), env=sandbox.env)
    assert blocked.code == 1 and f"--allow-delete gcs.bucket.{names['data']}" in blocked.err
    assert gcs.lookup_bucket(renamed) is None, "a blocked plan creates nothing either"

    applied(spec, sandbox, "--allow-delete", f"gcs.bucket.{names['data']}")
    assert gcs.lookup_bucket(names["data"]) is None
    assert gcs.lookup_bucket(renamed) is not None
    assert saxctl("plan", "--detailed-exitcode", str(spec), env=sandbox.env).code == 0


def test_a_bucket_update_is_conditional_on_the_metageneration_it_planned_from(sandbox, sandbox_env, spec, names, gcs):
    """A concurrent change between plan and patch must not be overwritten (ifMetagenerationMatch). In process: the
    sandbox's exports are set for this test only (sandbox_env), so no later test sees them."""
    from reconciler import runner

    applied(spec, sandbox)
    spec.write_text(spec.read_text().replace("{team: ml}", "{team: research}"))
    workspace = runner.open_workspace(str(spec))
    update = next(c for c in runner.make_plan(workspace).changes if c.address == "gcs.bucket.data")
    assert update.action is Action.UPDATE
    live = gcs.get_bucket(names["data"])
    live.labels = {**live.labels, "team": "changed-meanwhile"}
    live.patch()
    provider = workspace.connection.providers.for_kind("gcs.bucket")
    with pytest.raises(ConflictError, match="changed while saxctl was updating it"):
        provider.apply(update, _SilentProgress())
    assert gcs.get_bucket(names["data"]).labels["team"] == "changed-meanwhile"


def test_nothing_inside_a_missing_bucket_is_read(sandbox, tmp_path, unique_name):
    from reconciler.sandbox.sample_checkpoint import write_sample_gptj

    source = write_sample_gptj(tmp_path / "gptj")
    admin, data = unique_name("adm"), unique_name("dat")
    spec = buckets_spec(tmp_path, "inside", admin, data)
    spec.write_text(spec.read_text() + f"checkpoints:\n  tiny:\n    source: {{format: hf-gptj, path: {source}}}\n"
                                       f"    destination: gs://{data}/checkpoints/checkpoint_00000000\n")
    sandbox.reset_requests()
    planned = saxctl("plan", "--json", str(spec), env=sandbox.env)
    assert planned.code == 0, planned.text
    assert [r["path"] for r in sandbox.requests() if r["path"].startswith(f"/storage/v1/b/{data}/o")] == []
    document = json.loads(planned.out)
    assert document["observed_fingerprints"]["checkpoint.tiny"] == "not read"


class _SilentProgress:
    def update(self, message): pass
    def advance(self, done, total=None, unit="B"): pass
    def operation(self, description): pass
    def sleep(self, seconds): time.sleep(seconds)
    def time_left(self): return None


def test_replacing_a_data_bucket_that_holds_stashed_records_needs_a_yes(sandbox, spec, names, gcs):
    """A run stopped while replacing the admin bucket left saxctl's records in the data bucket's stash: replacing
    the data bucket now would lose them, so the plan says so and waits for a yes."""
    applied(spec, sandbox)
    gcs.bucket(names["data"]).blob("saxctl/admin-stash/iam-members.json").upload_from_string(b"{}")
    spec.write_text(spec.read_text().replace(f"data: {{name: {names['data']}, location: US",
                                             f"data: {{name: {names['data']}, location: EU"))
    refused = saxctl("plan", str(spec), env=sandbox.env)
    assert refused.code == 1, refused.text
    assert (f"gs://{names['data']} holds saxctl's records stashed while the admin bucket was replaced "
            "(saxctl/admin-stash/iam-members.json): they will be deleted with it") in refused.out
