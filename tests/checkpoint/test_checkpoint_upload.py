"""Upload to GCS (the sandbox's fake-gcs-server behind its front layer): crc32c verified, markers last, resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from click.testing import CliRunner

from bench.checkpoint_synthetic import GptjShape, write_synthetic_gptj
from reconciler.checkpoint.convert import convert
from reconciler.checkpoint.gcs_checkpoint import read_remote, upload
from reconciler.checkpoint.manifest import MARKERS, load_manifest
from reconciler.checkpoint.verify import verify_remote
from reconciler.cli import main
from reconciler.errors import SaxctlError

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT = "saxctl-test"
MEDIUM = GptjShape(layers=4, vocab=8000, d_model=512, heads=8, ffn=2048, rotary_dim=32)
# The tiny GPT-J's files: each of 29 arrays' .zarray and chunk, state/step's two, metadata/metadata, and the
# tokenizer's vocab.json and merges.txt
TINY_FILES = 29 * 2 + 2 + 1 + 2


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
    assert first.uploaded == TINY_FILES and first.skipped == 0
    result = verify_remote(client, url)
    assert (result.arrays, result.files) == (29, TINY_FILES)

    sandbox.reset_requests()
    again = upload(client, tiny_converted, url)
    assert (again.uploaded, again.skipped) == (0, TINY_FILES)
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
    assert result.uploaded == TINY_FILES
    verify_remote(client, f"gs://{bucket}/checkpoint_00000000")


def _kill_when(process: subprocess.Popen, condition, timeout: float = 120) -> None:
    try:
        deadline = time.monotonic() + timeout
        while not condition() and process.poll() is None:
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL, "it finished before it could be killed"


def _convert_command(source: Path, url: str, staging: Path, vocab_size: int) -> list[str]:
    return [sys.executable, "-m", "reconciler", "checkpoint", "convert", "--from", str(source), "--to", url,
            "--staging", str(staging), "--vocab-size", str(vocab_size), "--workers", "2", "--keep-staging"]


def test_killed_upload_resumes_and_is_never_committed_half_way(sandbox, bucket: str, medium_converted: Path, tmp_path):
    client = sandbox.storage_client(PROJECT)
    url = f"gs://{bucket}/checkpoints/checkpoint_00000000"
    # Slow every upload down so that the kill lands mid-way, with some objects there and others not.
    sandbox.inject_fault(method="POST", path="/upload/.*", delay_s=0.15)
    env = {**os.environ, **sandbox.env, "GOOGLE_CLOUD_PROJECT": PROJECT}
    # The staging copy is complete, so the source is only hashed (cached) and the upload starts at once.
    command = _convert_command(medium_converted.parent / "gptj", url, medium_converted, 8000)
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(process, lambda: len(read_remote(client, url).crc32c_by_path) >= 5)
    remote = read_remote(client, url)
    assert not any(marker in remote.crc32c_by_path for marker in MARKERS)
    assert remote.manifest is not None, "the manifest (the ownership mark) goes up before any data"
    already = len(remote.crc32c_by_path)

    sandbox.clear_faults()
    result = upload(client, medium_converted, url)
    assert result.skipped >= already - 3  # at most the objects in flight at the kill are sent again
    verify_remote(client, url)


def _sessions(entries: list[dict]) -> dict[str, list[dict]]:
    """Resumable-upload PUTs by session (upload_id)."""
    by_session: dict[str, list[dict]] = {}
    for entry in entries:
        query = parse_qs(entry["query"])
        if entry["method"] == "PUT" and "upload_id" in query:
            by_session.setdefault(query["upload_id"][0], []).append(entry)
    return by_session


def test_killed_upload_continues_large_objects_where_they_stopped(sandbox, bucket: str, tmp_path: Path):
    """Counted from the emulator's request log: the second run sends only what the server did not have."""
    from reconciler.checkpoint.resumable import CHUNK_BYTES

    shape = GptjShape(layers=1, vocab=40000, d_model=512, heads=8, ffn=2048, rotary_dim=32)  # two 82 MB arrays
    source = write_synthetic_gptj(tmp_path / "gptj", shape, shard_bytes=60 << 20)
    staging = tmp_path / "staging"
    convert(source, staging, vocab_size=shape.vocab)
    manifest = load_manifest(staging)
    assert sum(info["size"] > CHUNK_BYTES for info in manifest.files.values()) == 2
    client = sandbox.storage_client(PROJECT)
    url = f"gs://{bucket}/checkpoints/checkpoint_00000000"
    env = {**os.environ, **sandbox.env, "GOOGLE_CLOUD_PROJECT": PROJECT}

    sandbox.inject_fault(method="PUT", path="/upload/.*", delay_s=1.0)  # each chunk takes a second
    sandbox.reset_requests()
    first = subprocess.Popen(_convert_command(source, url, staging, shape.vocab), cwd=REPO_ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(first, lambda: any(e["method"] == "PUT" and e["status"] == 308 for e in sandbox.requests()))
    first_run = sandbox.requests()
    sandbox.clear_faults()
    partial = {upload_id: sum(e["bytes"] for e in puts if e["status"] == 308)
               for upload_id, puts in _sessions(first_run).items() if not any(e["status"] == 200 for e in puts)}
    assert sum(partial.values()) > 0, "the kill must land inside a large object"
    remote = read_remote(client, url)
    unfinished = sum(info["size"] for name, info in manifest.files.items()
                     if remote.crc32c_by_path.get(name) != info["crc32c"])

    sandbox.reset_requests()
    second = subprocess.run(_convert_command(source, url, staging, shape.vocab), cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    second_run = sandbox.requests()
    sent_again = sum(e["bytes"] for e in second_run if e["path"].startswith("/upload/"))
    resumed = _sessions(second_run)
    assert set(partial) <= set(resumed), "every session cut off by the kill is continued, not started again"
    print(f"\nkill -9 mid-object: first run sent {sum(e['bytes'] for e in first_run)} bytes "
          f"({sum(partial.values())} acknowledged in unfinished objects); a from-zero re-upload needs {unfinished}; "
          f"the second run sent {sent_again}")
    assert sent_again <= unfinished - sum(partial.values()) + 64 << 10  # multipart headers of the small files
    verify_remote(client, url)


def test_cli_converts_and_uploads_to_gs(sandbox_env, sandbox, bucket: str, tiny_gptj: Path, tmp_path: Path):
    url = f"gs://{bucket}/ckpt/checkpoint_00000000"
    args = ["checkpoint", "convert", "--from", str(tiny_gptj), "--to", url, "--vocab-size", "257",
            "--staging", str(tmp_path / "staging"), "--project", PROJECT]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"to {url}" in result.output
    verify = CliRunner().invoke(main, ["checkpoint", "verify", url, "--project", PROJECT])
    assert verify.exit_code == 0 and f"29 arrays, {TINY_FILES} files" in verify.output
