"""The checkpoint resource through observe / diff / apply against the sandbox's GCS."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import change_one_weight

from reconciler.engine.resource import Action
from reconciler.errors import SpecError
from reconciler.providers.checkpoint import CheckpointProvider, desired_resources
from reconciler.spec.model import Bucket, Buckets, Checkpoint, CheckpointSource, Model, Project, SourceMap, Spec

PROJECT = "saxctl-test"


def _spec(source: Path, destination: str, data_bucket: str = "data-bucket", models: tuple = ()) -> Spec:
    return Spec(
        api_version="saxctl/v1", kind="SaxDeployment", name="ckpt-demo",
        project=Project(id=PROJECT, region="us-central1"),
        buckets=Buckets(admin=Bucket("admin-bucket", "US"), data=Bucket(data_bucket, "US")),
        checkpoints={"tiny": Checkpoint("tiny", CheckpointSource("hf-gptj", str(source)), destination)},
        models=models,
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
    assert inside.fields["source_fingerprint"].startswith("xxh3-128:") and inside.fields["vocab_size"] == 50401
    elsewhere, = desired_resources(_spec(source, "gs://other/ckpt/checkpoint_00000000"))
    assert elsewhere.inside is None


def test_missing_source_with_nothing_at_the_destination_is_a_spec_error_at_its_line(tmp_path: Path):
    desired, = desired_resources(_spec(tmp_path / "nowhere", "gs://data-bucket/c/checkpoint_00000000"))
    with pytest.raises(SpecError) as raised:
        CheckpointProvider(None).diff(desired, None)
    assert str(raised.value).startswith("spec.yaml:30:11: checkpoints.tiny.source.path: ")
    assert "does not exist" in str(raised.value) and "no checkpoint at gs://data-bucket/c/checkpoint_00000000" in str(
        raised.value)


def _read_bytes() -> int:
    """Bytes this process has read through read(2) so far (page cache included): what hashing costs."""
    with open("/proc/self/io") as io:
        return next(int(line.split()[1]) for line in io if line.startswith("rchar:"))


def test_fingerprint_follows_the_content_not_the_file_times(source: Path):
    spec = _spec(source, "gs://data-bucket/c/checkpoint_00000000")
    before = desired_resources(spec)[0].fields["source_fingerprint"]
    shard = source / "pytorch_model-00002-of-00002.bin"
    started = _read_bytes()
    assert desired_resources(spec)[0].fields["source_fingerprint"] == before
    assert _read_bytes() - started < shard.stat().st_size, "a second fingerprint must come from the cache"

    os.utime(shard, ns=(shard.stat().st_atime_ns, shard.stat().st_mtime_ns + 1_000_000_000))  # `touch`
    assert desired_resources(spec)[0].fields["source_fingerprint"] == before

    change_one_weight(shard)  # same size, same mtime: only the content tells
    assert desired_resources(spec)[0].fields["source_fingerprint"] != before


def test_conversion_fills_the_hash_cache_so_a_plan_reads_no_shard(source: Path, tmp_path: Path):
    from reconciler.checkpoint.convert import convert

    convert(source, tmp_path / "checkpoint_00000000", vocab_size=257)
    started = _read_bytes()
    desired_resources(_spec(source, "gs://data-bucket/c/checkpoint_00000000"))
    shards = sum(p.stat().st_size for p in source.glob("*.bin"))
    assert _read_bytes() - started < shards / 10


def test_plan_names_the_params_class_that_makes_it_pad(source: Path):
    spec = _spec(source, "gs://data-bucket/c/checkpoint_00000000",
                 models=(Model("gptj", "saxml.server.pax.lm.params.gptj.GPTJ4BF16BS32", "tiny"),))
    desired, = desired_resources(spec)
    reason = CheckpointProvider(None).diff(desired, None).reason
    assert "padded with zeros from 257 to 50401 rows" in reason
    assert "saxml.server.pax.lm.params.gptj.GPTJ4BF16BS32 (models[0]) expects 50401" in reason
    no_model, = desired_resources(_spec(source, "gs://data-bucket/c/checkpoint_00000000"))
    assert "no model of the spec names a params class saxctl knows" in CheckpointProvider(None).diff(
        no_model, None).reason


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
    assert not (tmp_path / "staging").exists() or not any((tmp_path / "staging").rglob("*")), \
        "the staging copy is removed after a verified upload"

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
    touched, = desired_resources(spec)
    assert provider.diff(touched, provider.observe([touched])[touched.address]).action is Action.NOOP

    change_one_weight(shard)
    changed, = desired_resources(spec)
    change = provider.diff(changed, provider.observe([changed])[changed.address])
    assert change.action is Action.REPLACE and "content of" in change.reason and "changed since" in change.reason
    assert change.field_changes[0].forces_replacement
    provider.apply(change, RecordedProgress())
    assert provider.diff(changed, provider.observe([changed])[changed.address]).action is Action.NOOP


@dataclass(frozen=True)
class Uploaded:
    """The tiny checkpoint converted and uploaded through the provider, and what a test needs to look at it."""

    client: object
    bucket: str
    url: str
    provider: CheckpointProvider
    desired: object


@pytest.fixture
def uploaded(sandbox, unique_name, source: Path, tmp_path: Path) -> Uploaded:
    client = sandbox.storage_client(PROJECT)
    bucket = unique_name("data")
    client.create_bucket(bucket)
    url = f"gs://{bucket}/ckpt/checkpoint_00000000"
    provider = CheckpointProvider(client, staging_root=tmp_path / "staging")
    desired, = desired_resources(_spec(source, url, data_bucket=bucket))
    provider.apply(provider.diff(desired, None), RecordedProgress())
    return Uploaded(client, bucket, url, provider, desired)


def test_missing_source_keeps_a_complete_checkpoint_and_says_what_it_did_not_compare(uploaded: Uploaded,
                                                                                      source: Path):
    client, bucket, provider = uploaded.client, uploaded.bucket, uploaded.provider
    shutil.rmtree(source)
    without_source, = desired_resources(_spec(source, uploaded.url, data_bucket=bucket))
    change = provider.diff(without_source, provider.observe([without_source])[without_source.address])
    assert change.action is Action.NOOP
    assert "not compared with its source" in change.reason and "does not exist" in change.reason

    client.bucket(bucket).blob("ckpt/checkpoint_00000000/commit_success.txt").delete()
    with pytest.raises(SpecError, match=r"spec.yaml:30:11: checkpoints.tiny.source.path: .*incomplete"):
        provider.diff(without_source, provider.observe([without_source])[without_source.address])


def test_a_checkpoint_of_the_old_converter_is_replaced_with_a_reason(uploaded: Uploaded):
    from reconciler.checkpoint.manifest import CONVERTER_VERSION, MANIFEST_NAME, Manifest

    client, bucket, provider, desired = uploaded.client, uploaded.bucket, uploaded.provider, uploaded.desired
    # What saxctl's first converter left: version 1, a fingerprint of file names, sizes and times.
    blob = client.bucket(bucket).blob(f"ckpt/checkpoint_00000000/{MANIFEST_NAME}")
    manifest = Manifest.from_json(blob.download_as_text(), "test")
    manifest.converter_version, manifest.source_fingerprint = "1", "sha256:" + "0" * 64
    blob.upload_from_string(manifest.to_json())

    change = provider.diff(desired, provider.observe([desired])[desired.address])
    assert change.action is Action.REPLACE
    assert f"written by saxctl's converter version 1, this saxctl writes version {CONVERTER_VERSION}" in change.reason
    provider.apply(change, RecordedProgress())
    assert provider.diff(desired, provider.observe([desired])[desired.address]).action is Action.NOOP


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
