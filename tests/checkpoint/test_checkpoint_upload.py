"""Upload to GCS (the sandbox's fake-gcs-server behind its front layer): crc32c verified, markers last, resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.checkpoint_synthetic import GptjShape, write_synthetic_gptj
from reconciler.checkpoint.convert import convert
from reconciler.checkpoint.gcs_checkpoint import read_remote, upload
from reconciler.checkpoint.manifest import MANIFEST_NAME, MARKERS
from reconciler.checkpoint.verify import verify_remote
from reconciler.cli import main
from reconciler.errors import SaxctlError

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT = "saxctl-test"
MEDIUM = GptjShape(layers=4, vocab=8000, d_model=512, heads=8, ffn=2048, rotary_dim=32)


@pytest.fixture
def bucket(sandbox, unique_name) -> str:
    name = unique_name("ckpt")
    sandbox.storage_client(PROJECT).create_bucket(name)
    return name


@pytest.fixture(scope="module")
def tiny_converted(tiny_gptj: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny") / "checkpoint_00000000"
    convert(tiny_gptj, root, vocab_size=257)
    return root


@pytest.fixture(scope="module")
def medium_converted(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("medium-upload")
    source = write_synthetic_gptj(base / "gptj", MEDIUM, shard_bytes=30 << 20)
    root = base / "checkpoint_00000000"
    convert(source, root, vocab_size=8000)
    return root


def test_upload_verifies_and_a_rerun_sends_nothing(sandbox, bucket: str, tiny_converted: Path):
    client = sandbox.storage_client(PROJECT)
    url = f"gs://{bucket}/checkpoints/checkpoint_00000000"
    first = upload(client, tiny_converted, url, workers=4)
    assert first.uploaded == 61 and first.skipped == 0
    result = verify_remote(client, url)
    assert (result.arrays, result.files) == (29, 61)

    sandbox.reset_requests()
    again = upload(client, tiny_converted, url)
    assert (again.uploaded, again.skipped) == (0, 61)
    writes = [r for r in sandbox.requests() if r["method"] in ("POST", "PUT", "DELETE")]
    assert writes == []


def test_markers_are_the_last_objects_written(sandbox, bucket: str, tiny_converted: Path):
    client = sandbox.storage_client(PROJECT)
    upload(client, tiny_converted, f"gs://{bucket}/c/checkpoint_00000000")
    created = {b.name.removeprefix("c/checkpoint_00000000/"): b.time_created for b in client.list_blobs(bucket)}
    markers = [created.pop(marker) for marker in MARKERS]
    assert min(markers) >= max(created.values())
    assert markers == sorted(markers)  # metadata/, state/, then the root marker that orbax checks


def test_damaged_remote_object_is_replaced(sandbox, bucket: str, tiny_converted: Path):
    client = sandbox.storage_client(PROJECT)
    url = f"gs://{bucket}/checkpoint_00000000"
    upload(client, tiny_converted, url)
    damaged = "state/mdl_vars.params.lm.final_ln.scale/0"
    client.bucket(bucket).blob(f"checkpoint_00000000/{damaged}").upload_from_string(b"not zstd")
    with pytest.raises(SaxctlError, match="1 objects missing or with another crc32c"):
        verify_remote(client, url)
    again = upload(client, tiny_converted, url)
    assert again.uploaded == 1
    verify_remote(client, url)


def test_transient_errors_are_retried(sandbox, bucket: str, tiny_converted: Path):
    client = sandbox.storage_client(PROJECT)
    sandbox.inject_fault(method="POST", path="/upload/.*", status=503, count=3)
    result = upload(client, tiny_converted, f"gs://{bucket}/checkpoint_00000000")
    assert result.uploaded == 61
    verify_remote(client, f"gs://{bucket}/checkpoint_00000000")


def test_killed_upload_resumes_and_is_never_committed_half_way(sandbox, bucket: str, medium_converted: Path, tmp_path):
    client = sandbox.storage_client(PROJECT)
    url = f"gs://{bucket}/checkpoints/checkpoint_00000000"
    # Slow every upload down so that the kill lands mid-way, with some objects there and others not.
    sandbox.inject_fault(method="POST", path="/upload/.*", delay_s=0.15)
    command = [sys.executable, "-m", "reconciler", "checkpoint", "convert", "--from", "/nonexistent-is-fine",
               "--to", url, "--staging", str(medium_converted), "--vocab-size", "8000", "--workers", "2"]
    env = {**os.environ, **sandbox.env, "GOOGLE_CLOUD_PROJECT": PROJECT}
    # The source is only read when the staging copy is incomplete; here it is complete, so upload() runs at once.
    command[command.index("/nonexistent-is-fine")] = str(medium_converted.parent / "gptj")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(read_remote(client, url).crc32c_by_path) < 5 and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    remote = read_remote(client, url)
    assert not any(marker in remote.crc32c_by_path for marker in MARKERS)
    assert MANIFEST_NAME not in remote.crc32c_by_path
    already = len(remote.crc32c_by_path)

    sandbox.clear_faults()
    result = upload(client, medium_converted, url)
    assert result.skipped >= already - 2  # at most the objects in flight at the kill are sent again
    verify_remote(client, url)


def test_cli_converts_and_uploads_to_gs(sandbox_env, sandbox, bucket: str, tiny_gptj: Path, tmp_path: Path):
    url = f"gs://{bucket}/ckpt/checkpoint_00000000"
    args = ["checkpoint", "convert", "--from", str(tiny_gptj), "--to", url, "--vocab-size", "257",
            "--staging", str(tmp_path / "staging"), "--project", PROJECT]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"to {url}" in result.output
    verify = CliRunner().invoke(main, ["checkpoint", "verify", url, "--project", PROJECT])
    assert verify.exit_code == 0 and "29 arrays, 61 files" in verify.output
