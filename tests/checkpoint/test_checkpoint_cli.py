"""`saxctl checkpoint convert` as a user runs it: input and destination checked before any work, one sentence per
remote error, the staging copy said, removed after a verified upload, and never allowed to fill the disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runner import saxctl

from reconciler.checkpoint.verify import verify_remote

PROJECT = "saxctl-test"
PROGRESS_WORDS = ("hashing", "converting", "uploading", "MiB")


@pytest.fixture
def env(sandbox, tmp_path: Path) -> dict[str, str]:
    return {**sandbox.env, "GOOGLE_CLOUD_PROJECT": PROJECT, "XDG_CACHE_HOME": str(tmp_path / "cache")}


@pytest.fixture
def bucket(sandbox, unique_name) -> str:
    name = unique_name("ckpt")
    sandbox.storage_client(PROJECT).create_bucket(name)
    return name


def _staged(env: dict[str, str]) -> list[Path]:
    staging = Path(env["XDG_CACHE_HOME"]) / "saxctl" / "staging"
    return sorted(staging.rglob("*")) if staging.exists() else []


def test_missing_source_is_reported_before_any_progress(tmp_path: Path):
    run = saxctl("checkpoint", "convert", "--from", str(tmp_path / "nope"), "--to", str(tmp_path / "out"))
    assert run.code == 1
    assert run.err.strip().splitlines() == [f"Error: {tmp_path / 'nope'}: not a directory (expected a Hugging Face "
                                            "GPT-J model directory)"]
    assert not (tmp_path / "out").exists()


def test_missing_bucket_is_reported_before_converting_in_one_sentence(env, tiny_gptj: Path, unique_name):
    missing = unique_name("nobucket")
    run = saxctl("checkpoint", "convert", "--from", str(tiny_gptj), "--to",
                 f"gs://{missing}/ckpt/checkpoint_00000000", "--vocab-size", "257", env=env)
    assert run.code == 1, run.text
    error = run.err.strip().splitlines()[0]
    assert error == (f"Error: storage.objects.list gs://{missing}/ckpt/checkpoint_00000000/: "
                     f"the bucket {missing} does not exist")
    assert not any(word in run.text for word in PROGRESS_WORDS), "nothing is converted before the check"
    assert _staged(env) == []


def test_remote_error_during_upload_names_method_and_object_only(sandbox, env, bucket: str, tiny_gptj: Path):
    sandbox.inject_fault(method="POST", path=f"/upload/storage/v1/b/{bucket}/o", status=403)
    run = saxctl("checkpoint", "convert", "--from", str(tiny_gptj), "--to", f"gs://{bucket}/c/checkpoint_00000000",
                 "--vocab-size", "257", env=env)
    assert run.code == 1, run.text
    error = next(line for line in run.err.splitlines() if line.startswith("Error:"))
    assert error.startswith(f"Error: storage.objects.insert gs://{bucket}/c/checkpoint_00000000/") and " 403 " in error
    for internal in ("Request failed", "http://", "upload_id", "HTTPStatus", "Expected one of"):
        assert internal not in run.text


def test_staging_is_named_while_it_exists_and_removed_after_a_verified_upload(sandbox, env, bucket: str,
                                                                               tiny_gptj: Path):
    url = f"gs://{bucket}/ckpt/checkpoint_00000000"
    run = saxctl("checkpoint", "convert", "--from", str(tiny_gptj), "--to", url, "--vocab-size", "257", env=env)
    assert run.code == 0, run.text
    staging_root = Path(env["XDG_CACHE_HOME"]) / "saxctl" / "staging"
    assert f"Staging the converted checkpoint in {staging_root}" in run.err
    assert "Removed the staging copy." in run.out
    assert _staged(env) == []
    verify_remote(sandbox.storage_client(PROJECT), url)
    # One display for both phases, in binary units, not a line per tensor.
    assert "uploading" in run.err and "MiB" in run.err and "mdl_vars" not in run.err

    kept = saxctl("checkpoint", "convert", "--from", str(tiny_gptj), "--to", f"gs://{bucket}/other/checkpoint_00000000",
                  "--vocab-size", "257", "--keep-staging", env=env)
    assert kept.code == 0, kept.text
    assert "Kept the staging copy at" in kept.out
    assert any(path.name == "saxctl-manifest.json" for path in _staged(env))


def test_a_conversion_that_would_fill_the_disk_is_refused_before_writing(tiny_gptj: Path, tmp_path: Path):
    # 10**10 vocabulary rows of 64 floats: 2.5 TB, more than any test disk holds.
    out = tmp_path / "out" / "checkpoint_00000000"
    run = saxctl("checkpoint", "convert", "--from", str(tiny_gptj), "--to", str(out), "--vocab-size", str(10**10))
    assert run.code == 1, run.text
    assert f"Error: not enough disk space to convert into {out}:" in run.err
    assert "GiB free there" in run.err
    assert not out.exists()
