"""The command line as a user meets it: help, validate, exit codes, errors without tracebacks."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

from cli_runner import REPO, buckets_spec, saxctl

from reconciler.sandbox.sample_checkpoint import write_sample_gptj


def test_help_teaches_the_typical_session():
    shown = saxctl("--help")
    assert shown.code == 0
    for command in ("validate", "plan", "apply", "destroy", "drift", "cron", "force-unlock", "sandbox", "checkpoint"):
        assert command in shown.out
    assert 'eval "$(saxctl sandbox up)"' in shown.out


def test_validate_lists_every_problem_of_every_file_and_exits_3(tmp_path, sandbox):
    good = buckets_spec(tmp_path, "good", "good-admin-bkt", "good-data-bkt")
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("good-admin-bkt", "Bad_Name").replace("saxctl/v1", "saxctl/v9"))
    sandbox.reset_requests()
    checked = saxctl("validate", str(good), str(bad), env=sandbox.env)
    assert checked.code == 3
    lines = checked.out.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{bad}:") for line in lines)
    assert lines[0].startswith(f"{bad}:1:13: apiVersion: ")
    assert "buckets.admin.name: " in lines[1]
    assert "Traceback" not in checked.text
    assert sandbox.requests() == [], "validate makes no API call"


def test_shipped_specs_are_valid():
    specs = sorted(str(p) for p in (REPO / "specs").glob("*.yaml"))
    assert specs, "specs/ holds ready-to-copy specs"
    checked = saxctl("validate", *specs)
    assert checked.code == 0, checked.text


def test_validate_loads_no_cloud_client_and_no_rich():
    """`saxctl validate` (the pre-commit hook's check) costs its start and the spec's checks, nothing more."""
    run_validate = ("import atexit, runpy, sys\n"  # what was loaded, said at exit (saxctl leaves with os._exit)
                    "atexit.register(lambda: print(sorted({'.'.join(name.split('.')[:2]) if name.startswith('google.') "
                    "else name.split('.')[0] for name in sys.modules})))\n"
                    f"sys.argv = ['saxctl', 'validate', {str(REPO / 'specs' / 'gptj-v5e-2x2.yaml')!r}]\n"
                    "runpy.run_module('reconciler', run_name='__main__')\n")
    completed = subprocess.run([sys.executable, "-c", run_validate], capture_output=True, text=True, timeout=60,
                               env={**os.environ, "GPTJ_CHECKPOINT": "/nonexistent"})
    assert completed.returncode == 0, completed.stderr
    loaded = set(ast.literal_eval(completed.stdout.strip().splitlines()[-1]))
    assert not loaded & {"google.cloud", "google.auth", "grpc", "kubernetes", "rich", "numpy", "requests"}, loaded


def _modules_loaded_by(args: list[str], env: dict[str, str]) -> set[str]:
    """Every module a saxctl command imported, said at its exit (saxctl leaves with os._exit: atexit still runs)."""
    run = ("import atexit, runpy, sys\n"
           "atexit.register(lambda: print(sorted(sys.modules)))\n"
           f"sys.argv = ['saxctl', *{args!r}]\n"
           "runpy.run_module('reconciler', run_name='__main__')\n")
    completed = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, timeout=120,
                               env={**os.environ, "NO_COLOR": "1", **env})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return set(ast.literal_eval(completed.stdout.strip().splitlines()[-1]))


def test_no_op_plan_imports_nothing_only_apply_or_a_preflight_needs(tmp_path, sandbox, unique_name):
    """A plan that changes nothing pays for its reads only: no apply engine, no drift records, no Compute client (its
    preflight runs only when something is created or resized), no client package a thinner REST path replaced."""
    spec = buckets_spec(tmp_path, "noop-imports", unique_name("a"), unique_name("d"))  # a spec name of its own:
    env = {**sandbox.env, "SAXCTL_CACHE_DIR": str(tmp_path / "cache")}  # a "demo" plan would prune these buckets
    assert saxctl("apply", "--auto-approve", str(spec), env=env).code == 0
    loaded = _modules_loaded_by(["plan", "--detailed-exitcode", str(spec)], env)
    assert "google.cloud.storage" in loaded, "the plan did read the buckets"
    not_needed = {"reconciler.engine.apply", "reconciler.drift.record", "reconciler.drift.classify",
                  "reconciler.render.progress", "google.cloud.compute_v1", "google.cloud.resourcemanager_v3",
                  "aiohttp", "kubernetes", "numpy",
                  "jsonschema"}  # the spec's schema check was remembered by the apply (schema_cache)
    assert not loaded & not_needed, sorted(loaded & not_needed)


def test_plan_of_an_invalid_spec_exits_3_before_any_api_call(tmp_path, sandbox):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: saxctl/v1\nkind: SaxDeployment\n")
    sandbox.reset_requests()
    planned = saxctl("plan", str(bad), env=sandbox.env)
    assert planned.code == 3
    assert "invalid spec" in planned.err and "Traceback" not in planned.text
    assert sandbox.requests() == []


def test_unreachable_endpoint_is_a_clear_error_not_a_hang(tmp_path):
    spec = buckets_spec(tmp_path, "demo", "demo-admin-bkt", "demo-data-bkt")
    planned = saxctl("plan", str(spec), env={"STORAGE_EMULATOR_HOST": "http://127.0.0.1:9"}, timeout=30)
    assert planned.code == 1
    assert "cannot reach the endpoint http://127.0.0.1:9 (set by STORAGE_EMULATOR_HOST)" in planned.err
    assert "saxctl sandbox status" in planned.err
    assert "Traceback" not in planned.text


def test_apply_without_a_terminal_asks_for_auto_approve(tmp_path, sandbox, unique_name):
    spec = buckets_spec(tmp_path, "demo", unique_name("a"), unique_name("d"))
    refused = saxctl("apply", str(spec), env=sandbox.env)
    assert refused.code == 1
    assert "refusing to apply without confirmation: stdin is not a terminal; pass --auto-approve" in refused.err


def test_plan_json_is_the_documented_format(tmp_path, sandbox):
    spec = REPO / "specs" / "gptj-v5e-2x2.yaml"
    source = write_sample_gptj(tmp_path / "gptj")
    planned = saxctl("plan", "--json", str(spec), env={**sandbox.env, "GPTJ_CHECKPOINT": str(source)})
    assert planned.code == 0, planned.text
    document = json.loads(planned.out)
    from reconciler.engine.planfile import plan_validator

    plan_validator().validate(document)
    assert document["unmanaged"] == [], "every part of the spec has its provider"
    changes = {change["address"]: change for change in document["changes"]}
    assert {"gke.cluster.saxml", "gke.node_pool.tpu"} <= set(changes)
    model = changes["sax.model.gptj4bf16bs32"]
    assert model["action"] == "create"
    assert model["reason"] == "gke.cluster.saxml does not exist yet: created after it", "no Sax call before the cluster"


def test_markdown_plan_for_review(tmp_path, sandbox, unique_name):
    spec = buckets_spec(tmp_path, "demo", unique_name("a"), unique_name("d"))
    planned = saxctl("plan", "--markdown", str(spec), env=sandbox.env)
    assert planned.code == 0
    assert planned.out.startswith("Plan: 2 to add, 0 to change, 0 to replace, 0 to destroy\n")
    assert "<!-- saxctl-plan: demo -->" in planned.out and "### saxctl plan: `demo` (apply)" in planned.out
    assert "| ➕ | `gcs.bucket.admin` | create |" in planned.out
    assert "Buckets (`gcs.bucket.admin`, `gcs.bucket.data`): depends on usage" in planned.out


def test_unknown_target_is_named_with_the_known_addresses(tmp_path, sandbox, unique_name):
    spec = buckets_spec(tmp_path, "demo", unique_name("a"), unique_name("d"))
    planned = saxctl("plan", "--target", "gcs.bucket.logs", str(spec), env=sandbox.env)
    assert planned.code == 1
    assert "--target gcs.bucket.logs is not an address of this spec (addresses: gcs.bucket.admin, gcs.bucket.data)" \
        in planned.err


def test_the_readme_demo_runs_plan_apply_and_a_clean_second_plan(tmp_path):
    """README command 1, in its own sandbox: plan, apply --auto-approve, then a plan with no changes."""
    import subprocess

    env = {"SAXCTL_SANDBOX_DIR": str(tmp_path / "sandbox"), "GPTJ_CHECKPOINT": str(write_sample_gptj(tmp_path / "m")),
           "SAXCTL": str(REPO / ".venv" / "bin" / "saxctl"), "NO_COLOR": "1"}
    try:
        demo = subprocess.run(["bash", "examples/sandbox-demo.sh"], cwd=REPO, env={**os.environ, **env},
                              capture_output=True, text=True, timeout=600)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        # The buckets, the checkpoint, the cluster and its pool, the account and two bindings, the six Kubernetes
        # objects (the ApplySet record, the service account, three Sax servers, the HTTP Service) and the model.
        assert "Apply complete! 15 created" in demo.stdout
        assert "==> saxctl generate" in demo.stdout
        assert demo.stdout.rstrip().count("No changes. The live state matches the spec (15 resource(s) checked).") == 1
    finally:
        saxctl("sandbox", "down", "--purge", env=env)


def test_apply_waits_900_s_for_each_rollout_unless_told_otherwise(tmp_path):
    """The README's default: what `apply --help` says, and what apply hands the Kubernetes provider when the flag
    is not given (read from the command's own parsing: a real rollout would take the 900 s to show it)."""
    from reconciler import cli

    helped = saxctl("apply", "--help")
    assert helped.code == 0, helped.text
    assert "[default: 900.0;" in " ".join(helped.out.split())

    spec = buckets_spec(tmp_path, "demo", "demo-admin-bkt", "demo-data-bkt")
    parsed = cli.apply.make_context("apply", [str(spec)]).params
    options = cli._provider_options(parsed["kubeconfig"], parsed["kube_context"],
                                    rollout_timeout=parsed["rollout_timeout"])
    assert options.kubernetes.rollout_timeout_s == 900


def test_usage_errors_exit_1_not_the_changes_present_code(tmp_path):
    spec = buckets_spec(tmp_path, "demo", "demo-admin-bkt", "demo-data-bkt")
    typo = saxctl("plan", "--detailed-exitcod", str(spec))
    assert typo.code == 1, typo.text
    assert "No such option '--detailed-exitcod'. Did you mean '--detailed-exitcode'?" in typo.err
    assert "Try 'saxctl plan --help' for help." in typo.err
    assert saxctl("plan").code == 1, "a missing argument is a usage error too"


def test_a_plan_with_conflicts_is_never_called_no_changes(tmp_path, sandbox, unique_name):
    admin, data = unique_name("a"), unique_name("d")
    sandbox.storage_client("saxctl-test").create_bucket(admin, location="US")
    spec = buckets_spec(tmp_path, "demo", admin, data)
    for renderer in ("--markdown", "--json", None):
        planned = saxctl("plan", *([renderer] if renderer else []), str(spec), env=sandbox.env)
        assert planned.code == 1, planned.text
        assert "No changes" not in planned.out
    shown = saxctl("status", str(spec), env=sandbox.env)
    assert f"conflict: gs://{admin} exists but saxctl did not create it" in shown.out, "status says what plan says"


def test_a_model_target_plans_it_with_what_it_depends_on(tmp_path, sandbox):
    spec = REPO / "specs" / "gptj-v5e-2x2.yaml"
    source = write_sample_gptj(tmp_path / "gptj")
    planned = saxctl("plan", "--json", "--target", "sax.model.gptj4bf16bs32", str(spec),
                     env={**sandbox.env, "GPTJ_CHECKPOINT": str(source)})
    assert planned.code == 0, planned.text
    addresses = {change["address"] for change in json.loads(planned.out)["changes"]}
    assert {"sax.model.gptj4bf16bs32", "checkpoint.gptj-6b", "kubernetes.deployment.default/sax-model-server",
            "kubernetes.deployment.default/sax-admin-server", "gke.cluster.saxml"} <= addresses
    assert "kubernetes.deployment.default/sax-http" not in addresses, "the model does not depend on the HTTP server"


def test_status_names_every_bucket_the_same_way_whether_it_exists_or_not(tmp_path, sandbox, unique_name):
    admin, data = unique_name("a"), unique_name("d")
    spec = buckets_spec(tmp_path, "demo", admin, data)
    assert saxctl("apply", "--auto-approve", "--target", "gcs.bucket.admin", str(spec), env=sandbox.env).code == 0
    shown = saxctl("status", str(spec), env=sandbox.env)
    rows = {line.split()[0]: line.split()[1] for line in shown.out.splitlines()[2:]}
    assert rows == {"gcs.bucket.admin": f"gs://{admin}", "gcs.bucket.data": f"gs://{data}"}


def test_a_retried_read_during_a_plan_names_the_object_and_status_not_the_clients_url(tmp_path, sandbox,
                                                                                        unique_name):
    data = unique_name("d")
    spec = buckets_spec(tmp_path, "demo", unique_name("a"), data)
    sandbox.inject_fault(method="GET", path=f"^/storage/v1/b/{data}$", status=429, count=1, retry_after=0.1)
    planned = saxctl("plan", str(spec), env=sandbox.env)
    assert planned.code == 0, planned.text
    assert f"storage.buckets.get gs://{data}: 429 " in planned.err
    assert "retrying in" in planned.err and "(attempt 1 failed)" in planned.err
    assert "http://" not in planned.err and "WARNING" not in planned.err
