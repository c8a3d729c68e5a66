"""The checkpoint through `saxctl apply|plan|status|destroy` on the sandbox, as a user runs it: kill -9 mid-upload,
a plain re-apply, and a spec whose local source has gone."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest
from cli_runner import REPO, saxctl, saxctl_background

from reconciler.checkpoint.gcs_checkpoint import read_remote
from reconciler.checkpoint.manifest import MARKERS
from reconciler.checkpoint.verify import verify_remote

PROJECT = "saxctl-test"
DEMO_SPEC = REPO / "specs" / "gptj-v5e-2x2.yaml"
SOURCE_FIELD = "checkpoints.gptj-6b.source.path"


@pytest.fixture
def names(unique_name, unique_project) -> dict[str, str]:
    # Its own project too: the demo spec's service account and cluster names are the same in every test.
    return {"admin": unique_name("adm"), "data": unique_name("dat"), "project": unique_project()}


@pytest.fixture
def source(tiny_gptj: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "gptj"
    shutil.copytree(tiny_gptj, copy, ignore=shutil.ignore_patterns("safetensors"))
    return copy


@pytest.fixture
def spec(tmp_path: Path, names: dict[str, str], source: Path) -> Path:
    """The demo spec with this test's buckets and source."""
    text = DEMO_SPEC.read_text()
    text = text.replace("saxctl-demo-sax-admin", names["admin"]).replace("saxctl-demo-sax-data", names["data"])
    text = text.replace("id: saxctl-demo", f"id: {names['project']}")
    text = re.sub(r"path: \$\{GPTJ_CHECKPOINT[^}]*\}", f"path: {source}", text)
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def env(sandbox, tmp_path: Path) -> dict[str, str]:
    return {**sandbox.env, "XDG_CACHE_HOME": str(tmp_path / "cache")}


def _apply_until_done(spec: Path, env: dict[str, str]):
    """A plain re-apply; a kill -9 leaves the lock of the dead run, which only `force-unlock ID` breaks."""
    run = saxctl("apply", "--auto-approve", str(spec), env=env, timeout=300)
    held = re.search(r"saxctl force-unlock (\S+)", run.text)
    if run.code != 0 and held:
        assert saxctl("force-unlock", held.group(1), str(spec), env=env).code == 0
        run = saxctl("apply", "--auto-approve", str(spec), env=env, timeout=300)
    return run


def test_apply_killed_mid_upload_is_resumed_by_a_plain_reapply(sandbox, spec, names, env):
    url = f"gs://{names['data']}/checkpoints/checkpoint_00000000"
    client = sandbox.storage_client(PROJECT)
    sandbox.inject_fault(method="POST", path=f"/upload/storage/v1/b/{names['data']}/o", delay_s=0.3)
    sandbox.reset_requests()
    process = saxctl_background("apply", "--auto-approve", str(spec), env=env)

    def uploads_done() -> int:
        return sum(1 for r in sandbox.requests() if r["method"] == "POST" and r["path"].startswith("/upload/")
                   and r["status"] == 200)

    try:
        deadline = time.monotonic() + 120
        while uploads_done() < 4 and process.poll() is None:
            assert time.monotonic() < deadline, "no upload seen"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read()
    sandbox.clear_faults()
    left = read_remote(client, url)
    assert left.crc32c_by_path and not left.committed

    planned = saxctl("plan", str(spec), env=env)
    assert planned.code == 0, planned.text
    assert "did not create" not in planned.text and "--adopt" not in planned.text
    assert re.search(r"checkpoint\.gptj-6b .*incomplete", planned.out), planned.out

    resumed = _apply_until_done(spec, env)
    assert resumed.code == 0, resumed.text
    verify_remote(client, url)
    # One progress display: phases with amounts in binary units, a rate; never a line per tensor.
    assert re.search(r"checkpoint\.gptj-6b: (converting|uploading): [\d.]+ (KiB|MiB|GiB)", resumed.err), resumed.err
    assert "mdl_vars" not in resumed.err


def test_a_missing_source_leaves_plan_status_and_destroy_working(sandbox, spec, names, env, source):
    assert _apply_until_done(spec, env).code == 0
    shutil.rmtree(source)

    planned = saxctl("plan", "--detailed-exitcode", str(spec), env=env)
    assert planned.code == 0, planned.text  # nothing to change for the checkpoint, and no error
    shown = saxctl("status", str(spec), env=env)
    assert shown.code == 0, shown.text
    assert "checkpoint.gptj-6b" in shown.out

    client = sandbox.storage_client(PROJECT)
    client.bucket(names["data"]).blob(f"checkpoints/checkpoint_00000000/{MARKERS[-1]}").delete()
    broken = saxctl("plan", str(spec), env=env)
    assert broken.code == 3, broken.text
    line = next(n for n, text in enumerate(spec.read_text().splitlines(), 1) if text.strip().startswith("path:"))
    assert re.search(rf"{re.escape(str(spec))}:{line}:\d+: {SOURCE_FIELD}: .*does not exist", broken.text), broken.text

    gone = saxctl("destroy", "--auto-approve", "--force-delete-buckets", str(spec), env=env, timeout=300)
    assert gone.code == 0, gone.text
    assert client.lookup_bucket(names["data"]) is None and client.lookup_bucket(names["admin"]) is None


def test_a_checkpoint_that_left_the_spec_is_deleted_only_when_allowed_and_only_what_saxctl_wrote(
        sandbox, names, env, source, tmp_path):
    """Two checkpoints of a spec without a cluster; one leaves the spec: it is found by its manifest, which names
    the spec, and pruned like data (the spec no longer names its source), objects beside it untouched."""
    data = names["data"]
    kept, left = (f"gs://{data}/checkpoints/{key}/checkpoint_00000000" for key in ("kept", "left"))
    spec = tmp_path / "checkpoints.yaml"
    checkpoint = "  {key}:\n    source: {{format: hf-gptj, path: {source}}}\n    destination: {url}\n"
    head = ("apiVersion: saxctl/v1\nkind: SaxDeployment\nmetadata: {name: ckpt-prune}\n"
            f"project: {{id: {names['project']}, region: us-central1}}\n"
            f"buckets:\n  admin: {{name: {names['admin']}, location: US}}\n  data: {{name: {data}, location: US}}\n"
            "checkpoints:\n" + checkpoint.format(key="kept", source=source, url=kept))
    spec.write_text(head + checkpoint.format(key="left", source=source, url=left))
    assert _apply_until_done(spec, env).code == 0
    client = sandbox.storage_client(PROJECT)
    client.bucket(data).blob("checkpoints/left/notes.txt").upload_from_string(b"not saxctl's")
    spec.write_text(head)

    address = f"checkpoint.{data}/checkpoints/left/checkpoint_00000000"
    blocked = saxctl("apply", "--auto-approve", str(spec), env=env)
    assert blocked.code == 1, blocked.text
    assert f"- {address} delete  # no longer in the spec: {left} will be deleted" in blocked.out
    assert "saxctl cannot convert it again: the spec no longer names the checkpoint, nor its source" in blocked.out
    assert f"rerun with --allow-delete {address} to delete it anyway" in blocked.err
    assert read_remote(client, left).committed

    pruned = saxctl("apply", "--auto-approve", "--allow-delete", address, str(spec), env=env)
    assert pruned.code == 0, pruned.text
    assert read_remote(client, left).crc32c_by_path == {}
    assert client.bucket(data).blob("checkpoints/left/notes.txt").exists()
    verify_remote(client, kept)
    quiet = saxctl("plan", "--detailed-exitcode", str(spec), env=env)
    assert quiet.code == 0, quiet.text
