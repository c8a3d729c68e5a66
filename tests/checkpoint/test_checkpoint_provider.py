"""The checkpoint resource through observe / diff / apply against the sandbox's GCS."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from reconciler.engine.resource import Action
from reconciler.errors import SpecError
from reconciler.providers.checkpoint import CheckpointProvider, desired_resources
from reconciler.spec.model import Bucket, Buckets, Checkpoint, CheckpointSource, Project, SourceMap, Spec

PROJECT = "saxctl-test"


def _spec(source: Path, destination: str, data_bucket: str = "data-bucket") -> Spec:
    return Spec(
        api_version="saxctl/v1", kind="SaxDeployment", name="ckpt-demo",
        project=Project(id=PROJECT, region="us-central1"),
        buckets=Buckets(admin=Bucket("admin-bucket", "US"), data=Bucket(data_bucket, "US")),
        checkpoints={"tiny": Checkpoint("tiny", CheckpointSource("hf-gptj", str(source)), destination)},
        source=SourceMap(file="spec.yaml", positions={"checkpoints.tiny.source.path": (30, 11)}),
    )


class RecordedProgress:
    """What apply told the person watching: messages and the last byte counts."""

    def __init__(self):
        self.messages: list[str] = []
        self.advances: list[tuple[int, int | None]] = []

    def update(self, message: str) -> None:
        self.messages.append(message)

    def advance(self, done: int, total: int | None = None, unit: str = "B") -> None:
        self.advances.append((done, total))


@pytest.fixture
def source(tiny_gptj: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "source"
    shutil.copytree(tiny_gptj, copy, ignore=shutil.ignore_patterns("safetensors"))
    return copy


def test_desired_resource_lives_in_the_data_bucket_only_when_it_is_there(source: Path):
    inside, = desired_resources(_spec(source, "gs://data-bucket/ckpt/checkpoint_00000000"))
    assert (inside.address, inside.kind, inside.inside) == ("checkpoint.tiny", "checkpoint", "gcs.bucket.data")
    assert inside.fields["source_fingerprint"].startswith("sha256:") and inside.fields["vocab_size"] == 50401
    elsewhere, = desired_resources(_spec(source, "gs://other/ckpt/checkpoint_00000000"))
    assert elsewhere.inside is None


def test_missing_source_is_a_spec_error_at_its_line(tmp_path: Path):
    with pytest.raises(SpecError) as raised:
        desired_resources(_spec(tmp_path / "nowhere", "gs://data-bucket/c/checkpoint_00000000"))
    assert str(raised.value).startswith("spec.yaml:30:11: checkpoints.tiny.source.path: ")


def test_fingerprint_follows_the_source(source: Path):
    spec = _spec(source, "gs://data-bucket/c/checkpoint_00000000")
    before = desired_resources(spec)[0].fields["source_fingerprint"]
    assert desired_resources(spec)[0].fields["source_fingerprint"] == before
    shard = source / "pytorch_model-00002-of-00002.bin"
    os.utime(shard, ns=(shard.stat().st_atime_ns, shard.stat().st_mtime_ns + 1_000_000_000))
    assert desired_resources(spec)[0].fields["source_fingerprint"] != before


def test_create_noop_incomplete_replace(sandbox, unique_name, source: Path, tmp_path: Path):
    client = sandbox.storage_client(PROJECT)
    bucket = unique_name("data")
    client.create_bucket(bucket)
    spec = _spec(source, f"gs://{bucket}/ckpt/checkpoint_00000000", data_bucket=bucket)
    provider = CheckpointProvider(client, staging_root=tmp_path / "staging")
    desired, = desired_resources(spec)
    # The tiny model has 257 rows; the resource pads to saxml's 50401 and says so.

    sandbox.reset_requests()
    observed = provider.observe([desired])[desired.address]
    assert observed is None and len(sandbox.requests()) == 1
    change = provider.diff(desired, observed)
    assert change.action is Action.CREATE and "no checkpoint at gs://" in change.reason

    progress = RecordedProgress()
    after = provider.apply(change, progress)
    assert after.owner == "ckpt-demo" and after.facts["committed"]
    assert any("padded from 257 to 50401" in message for message in progress.messages)
    assert progress.advances[-1][0] == progress.advances[-1][1] > 0

    sandbox.reset_requests()
    observed = provider.observe([desired])[desired.address]
    assert len(sandbox.requests()) == 2  # one listing, one manifest download
    assert provider.diff(desired, observed).action is Action.NOOP

    client.bucket(bucket).blob("ckpt/checkpoint_00000000/commit_success.txt").delete()
    change = provider.diff(desired, provider.observe([desired])[desired.address])
    assert change.action is Action.CREATE and "commit markers missing" in change.reason
    provider.apply(change, RecordedProgress())
    assert provider.diff(desired, provider.observe([desired])[desired.address]).action is Action.NOOP

    shard = source / "pytorch_model-00001-of-00002.bin"
    os.utime(shard, ns=(shard.stat().st_atime_ns, shard.stat().st_mtime_ns + 1_000_000_000))
    changed, = desired_resources(spec)
    change = provider.diff(changed, provider.observe([changed])[changed.address])
    assert change.action is Action.REPLACE and "changed since" in change.reason
    assert change.field_changes[0].forces_replacement
    provider.apply(change, RecordedProgress())
    assert provider.diff(changed, provider.observe([changed])[changed.address]).action is Action.NOOP


def test_delete_removes_only_what_saxctl_wrote(sandbox, unique_name, source: Path, tmp_path: Path):
    client = sandbox.storage_client(PROJECT)
    bucket = unique_name("data")
    client.create_bucket(bucket)
    client.bucket(bucket).blob("ckpt/checkpoint_00000000/notes.txt").upload_from_string("the user's")
    desired, = desired_resources(_spec(source, f"gs://{bucket}/ckpt/checkpoint_00000000", data_bucket=bucket))
    provider = CheckpointProvider(client, staging_root=tmp_path / "staging")
    observed = provider.apply(provider.diff(desired, None), RecordedProgress())
    from reconciler.engine.resource import Change

    provider.apply(Change(desired.address, "checkpoint", Action.DELETE, "destroy", desired=desired, observed=observed),
                   RecordedProgress())
    assert [b.name for b in client.list_blobs(bucket)] == ["ckpt/checkpoint_00000000/notes.txt"]
