"""The checkpoint resource: a converted Pax checkpoint in GCS that matches a local HF GPT-J source."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from reconciler.engine.address import Address
from reconciler.engine.diffing import resource_changes
from reconciler.engine.provider import Progress, Provider
from reconciler.engine.resource import Action, Change, Hazard, Observed, Resource
from reconciler.errors import SaxctlError, SpecError, SpecProblem
from reconciler.providers.gcs import bucket as gcs_bucket
from reconciler.providers.parallel import observe_each
from reconciler.spec.model import Checkpoint, Spec

KIND = "checkpoint"
# saxml's GPT-J params build 50401 rows; a 50400-row source (EleutherAI's) is padded, and apply says so.
VOCAB_SIZE = 50401
# All of them: a checkpoint is data, converted whole; any change means converting and uploading it again.
REPLACE_ON = frozenset({"source_format", "source_fingerprint", "vocab_size", "converter_version"})


def address(key: str) -> Address:
    return Address(KIND, key)


def desired_resources(spec: Spec) -> list[Resource]:
    return [_desired(spec, key, checkpoint) for key, checkpoint in spec.checkpoints.items()]


def _desired(spec: Spec, key: str, checkpoint: Checkpoint) -> Resource:
    from reconciler.checkpoint.gcs_checkpoint import parse_gs_url
    from reconciler.checkpoint.hf_source import source_fingerprint
    from reconciler.checkpoint.manifest import CONVERTER_VERSION

    spec_field = f"checkpoints.{key}"

    def problem(field: str, message: str) -> SpecError:
        line, column = spec.source.locate(field)
        return SpecError([SpecProblem(spec.source.file, line, column, field, message)])

    if checkpoint.source.path.startswith("gs://"):
        raise problem(f"{spec_field}.source.path", "gs:// sources are not supported yet; download the model first")
    try:
        bucket, _ = parse_gs_url(checkpoint.destination)
    except SaxctlError as error:
        raise problem(f"{spec_field}.destination", error.message) from None
    try:
        fingerprint = source_fingerprint(Path(checkpoint.source.path))
    except SaxctlError as error:
        raise problem(f"{spec_field}.source.path", error.message) from None
    return Resource(
        address=address(key),
        kind=KIND,
        name=checkpoint.destination,
        fields={
            "source_format": checkpoint.source.format,
            "source_fingerprint": fingerprint,
            "vocab_size": VOCAB_SIZE,
            "converter_version": CONVERTER_VERSION,
        },
        inside=gcs_bucket.address("data") if bucket == spec.buckets.data.name else None,
        replace_on=REPLACE_ON,
        params={"source_path": checkpoint.source.path, "owner": spec.name},
        spec_field=spec_field,
    )


def _observed(resource_address: str, remote) -> Observed | None:
    if not remote.crc32c_by_path:
        return None
    manifest = remote.manifest
    fields: dict[str, Any] = {}
    if manifest is not None:
        fields = {
            "source_format": manifest.source_format,
            "source_fingerprint": manifest.source_fingerprint,
            "vocab_size": manifest.vocab_size,
            "converter_version": manifest.converter_version,
        }
    return Observed(
        address=resource_address,
        remote_id=remote.url,
        fields=fields,
        fingerprint=f"manifest generation {remote.generation or 'none'}; markers {int(remote.committed)}",
        owner=manifest.owner if manifest is not None else None,
        facts={
            "committed": remote.committed,
            "objects": len(remote.crc32c_by_path),
            "missing_or_different": len(remote.missing_or_different()),
        },
    )


class _PhaseProgress:
    """Names the phase (convert, upload) in every message the engine shows."""

    def __init__(self, progress: Progress, phase: str):
        self._progress, self._phase = progress, phase

    def update(self, message: str) -> None:
        self._progress.update(f"{self._phase} {message.removeprefix('mdl_vars.params.lm.')}")

    def advance(self, done: int, total: int | None = None, unit: str = "B") -> None:
        self._progress.advance(done, total, unit)


class CheckpointProvider(Provider):
    kinds = frozenset({KIND})

    def __init__(self, storage_client, *, staging_root: Path | None = None, workers: int = 8):
        self._client = storage_client
        self._staging_root = staging_root  # None: ~/.cache/saxctl/staging, one directory per destination
        self._workers = workers

    def observe(self, desired: Sequence[Resource]) -> Mapping[str, Observed | None]:
        """One listing under the checkpoint prefix, plus one small manifest download when there is one."""
        return observe_each(desired, self._read, "checkpoint-observe")

    def _read(self, resource: Resource) -> Observed | None:
        from reconciler.checkpoint.gcs_checkpoint import read_remote

        return _observed(resource.address, read_remote(self._client, resource.name))

    def diff(self, desired: Resource, observed: Observed | None) -> Change:
        if observed is None:
            return Change(desired.address, KIND, Action.CREATE,
                          f"no checkpoint at {desired.name}: it will be converted and uploaded", desired=desired)
        changes = resource_changes(desired, observed.fields)
        if changes:
            first = changes[0]
            reason = (f"{first.path} {first.before} → {first.after}: the checkpoint at {desired.name} "
                      "will be converted again and replaced")
            if first.path == "source_fingerprint":
                reason = (f"the source at {desired.params['source_path']} changed since {desired.name} was converted "
                          "(file sizes, times or index differ): it will be converted again and replaced")
            return Change(desired.address, KIND, Action.REPLACE, reason, changes, desired, observed)
        facts = observed.facts
        if not facts["committed"] or facts["missing_or_different"]:
            missing = facts["missing_or_different"]
            detail = f"{missing} objects missing or different" if missing else "commit markers missing"
            return Change(desired.address, KIND, Action.CREATE,
                          f"the checkpoint at {desired.name} is incomplete ({detail}): the rest will be uploaded",
                          desired=desired, observed=observed)
        return Change(desired.address, KIND, Action.NOOP, "up to date: converted from this source", desired=desired,
                      observed=observed)

    def apply(self, change: Change, progress: Progress) -> Observed | None:
        if change.action is Action.DELETE:
            self._delete(change, progress)
            return None
        if change.action not in (Action.CREATE, Action.REPLACE):
            raise ValueError(f"{change.address}: nothing to apply for {change.action.value}")
        from reconciler.checkpoint.pipeline import convert_to, staging_dir

        resource = change.desired
        staging = None
        if self._staging_root is not None:
            staging = self._staging_root / staging_dir(resource.name).parent.name / Path(resource.name).name
        result = convert_to(
            Path(resource.params["source_path"]), resource.name, resource.fields["vocab_size"],
            storage_client=self._client, workers=self._workers, staging=staging,
            convert_progress=_PhaseProgress(progress, "converting"),
            upload_progress=_PhaseProgress(progress, "uploading"), owner=resource.params["owner"],
        )
        for note in result.converted.notes:
            progress.update(note)
        return self._read(resource)

    def hazard(self, change: Change, going_inside: Sequence[str]) -> Hazard | None:
        """Converted weights: what the delete loses is rebuilt by converting the source again."""
        facts = change.observed.facts
        return Hazard(f"{change.observed.remote_id}: the converted checkpoint ({facts['objects']} objects) will be "
                      "deleted; saxctl converts it again from its source when the spec asks for it",
                      needs_approval=False)

    def _delete(self, change: Change, progress: Progress) -> None:
        """Markers first, then every object the manifest lists, then the manifest: only what saxctl wrote."""
        from reconciler.checkpoint.gcs_checkpoint import delete_checkpoint

        progress.update(f"deleting {change.address}")
        delete_checkpoint(self._client, change.observed.remote_id)
