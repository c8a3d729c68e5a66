"""The checkpoint resource: a converted Pax checkpoint in GCS that matches a local HF GPT-J source."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from reconciler.engine.address import Address
from reconciler.engine.diffing import field_changes, resource_changes
from reconciler.engine.provider import Owned, Progress, Provider
from reconciler.engine.resource import Action, Change, Hazard, Observed, Resource
from reconciler.errors import SaxctlError, SpecError, SpecProblem
from reconciler.providers.gcs import bucket as gcs_bucket
from reconciler.providers.parallel import observe_each, run_each
from reconciler.spec.model import Checkpoint, Spec
from reconciler.spec.saxparams import VOCAB_SIZES

KIND = "checkpoint"
DEFAULT_VOCAB_SIZE = 50401  # saxml's GPT-J params; used when no model of the spec names a class saxctl knows
# All of them: a checkpoint is data, converted whole; any change means converting and uploading it again.
REPLACE_ON = frozenset({"source_format", "source_fingerprint", "vocab_size", "converter_version"})


def address(key: str) -> Address:
    return Address(KIND, key)


def desired_resources(spec: Spec) -> list[Resource]:
    return [_desired(spec, key, checkpoint) for key, checkpoint in spec.checkpoints.items()]


def _problem(spec_file: str, position: Sequence[int], field: str, message: str) -> SpecError:
    return SpecError([SpecProblem(spec_file, position[0], position[1], field, message)])


def _target_vocab(spec: Spec, key: str, checkpoint: Checkpoint) -> tuple[int, str]:
    """Rows the params classes of the models using this checkpoint expect, and who expects them."""
    known = [(index, model, VOCAB_SIZES[model.model_path]) for index, model in enumerate(spec.models)
             if model.checkpoint in (key, checkpoint.destination) and model.model_path in VOCAB_SIZES]
    for index, model, rows in known[1:]:
        if rows != known[0][2]:
            field = f"models[{index}].modelPath"
            raise _problem(spec.source.file, spec.source.locate(field), field,
                           f"{model.model_path} expects {rows} vocabulary rows, {known[0][1].model_path} "
                           f"(models[{known[0][0]}]) {known[0][2]}: one converted checkpoint cannot serve both")
    if not known:
        return DEFAULT_VOCAB_SIZE, (f"no model of the spec names a params class saxctl knows; "
                                    f"GPT-J's {DEFAULT_VOCAB_SIZE}")
    index, model, rows = known[0]
    return rows, f"{model.model_path} (models[{index}]) expects {rows}"


def _desired(spec: Spec, key: str, checkpoint: Checkpoint) -> Resource:
    from reconciler.checkpoint.gcs_checkpoint import parse_gs_url
    from reconciler.checkpoint.gptj_config import load_gptj_dims
    from reconciler.checkpoint.hf_source import source_fingerprint
    from reconciler.checkpoint.layout import pax_arrays
    from reconciler.checkpoint.manifest import CONVERTER_VERSION

    spec_field = f"checkpoints.{key}"
    source_field = f"{spec_field}.source.path"
    source_position = spec.source.locate(source_field)

    def problem(field: str, message: str) -> SpecError:
        return _problem(spec.source.file, spec.source.locate(field), field, message)

    if checkpoint.source.path.startswith("gs://"):
        raise problem(source_field, "gs:// sources are not supported yet; download the model first")
    try:
        bucket, _ = parse_gs_url(checkpoint.destination)
    except SaxctlError as error:
        raise problem(f"{spec_field}.destination", error.message) from None
    vocab_size, vocab_reason = _target_vocab(spec, key, checkpoint)
    params: dict[str, Any] = {
        "source_path": checkpoint.source.path, "owner": spec.name, "vocab_reason": vocab_reason,
        "spec_file": spec.source.file, "source_field": source_field, "source_position": list(source_position),
    }
    source = Path(checkpoint.source.path)
    fingerprint = None
    if not source.exists():
        # Not an error yet: status, destroy and a plan against a complete destination need no source (diff decides).
        params["source_missing"] = f"{source} does not exist"
    else:
        try:
            dims = load_gptj_dims(source / "config.json")
            fingerprint = source_fingerprint(source)
        except SaxctlError as error:
            raise problem(source_field, error.message) from None
        if dims.vocab_size > vocab_size:
            raise problem(source_field, f"the source has {dims.vocab_size} vocabulary rows, more than the "
                                        f"{vocab_size} the target expects ({vocab_reason})")
        params["source_vocab_size"] = dims.vocab_size
        params["output_bytes"] = sum(array.nbytes for array in pax_arrays(dims, vocab_size))
    return Resource(
        address=address(key),
        kind=KIND,
        name=checkpoint.destination,
        fields={
            "source_format": checkpoint.source.format,
            "source_fingerprint": fingerprint,
            "vocab_size": vocab_size,
            "converter_version": CONVERTER_VERSION,
        },
        inside=gcs_bucket.address("data") if bucket == spec.buckets.data.name else None,
        replace_on=REPLACE_ON,
        params=params,
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
        outputs={"markers": bool(remote.committed)},  # what a model's Requirement asks for before Sax loads it
    )


def _as_converted(resource_address: Address, applied: Resource, url: str) -> Observed:
    """A checkpoint as converting `applied` and uploading it leaves it: complete, committed, its manifest the spec's."""
    return Observed(
        address=resource_address,
        remote_id=url,
        fields=dict(applied.fields),
        fingerprint="manifest generation (not read: offline); markers 1",
        owner=applied.params.get("owner"),
        facts={"committed": True, "objects": None, "missing_or_different": 0},
        outputs={"markers": True},
    )


def _work(desired: Resource) -> str:
    """What converting means here, for a reason: its size, and the vocabulary padding when there is any."""
    params = desired.params
    text = f"{params['output_bytes'] / (1 << 30):.1f} GiB converted into a local staging copy and uploaded"
    if params["source_vocab_size"] < desired.fields["vocab_size"]:
        text += (f"; the vocabulary is padded with zeros from {params['source_vocab_size']} to "
                 f"{desired.fields['vocab_size']} rows ({params['vocab_reason']})")
    return text


def _incomplete(observed: Observed) -> str | None:
    facts = observed.facts
    if not observed.fields:
        return "it has no saxctl manifest"
    if facts["missing_or_different"]:
        return f"{facts['missing_or_different']} objects missing or different"
    if not facts["committed"]:
        return "commit markers missing"
    return None


class CheckpointProvider(Provider):
    kinds = frozenset({KIND})

    def __init__(self, storage_client, *, staging_root: Path | None = None, workers: int = 8,
                 source_checked: bool = True):
        self._client = storage_client
        # False in an offline plan (a pull request's: its sources are not there): planned from the spec alone.
        self._source_checked = source_checked
        self._staging_root = staging_root  # None: ~/.cache/saxctl/staging, one directory per destination
        self._workers = workers

    def observe(self, desired: Sequence[Resource]) -> Mapping[str, Observed | None]:
        """One listing under the checkpoint prefix, plus one small manifest download when there is one."""
        return observe_each(desired, self._read, "checkpoint-observe")

    def _read(self, resource: Resource) -> Observed | None:
        from reconciler.checkpoint.gcs_checkpoint import read_remote

        return _observed(resource.address, read_remote(self._client, resource.name))

    def modelled(self, desired: Resource, applied: Resource | None) -> Observed | None:
        if applied is None or applied.name != desired.name:
            return None
        return _as_converted(desired.address, applied, desired.name)

    def left_behind(self, applied: Resource) -> Owned | None:
        """As owned() finds it: by its bucket and prefix, with nothing of the spec (it no longer names its source)."""
        from reconciler.checkpoint.gcs_checkpoint import parse_gs_url

        bucket_name, prefix = parse_gs_url(applied.name)
        url = f"gs://{bucket_name}/{prefix}"
        resource = Resource(address(f"{bucket_name}/{prefix}"), KIND, url, {}, inside=applied.inside, remote_id=url)
        return Owned(resource, _as_converted(resource.address, applied, url))

    def diff(self, desired: Resource, observed: Observed | None) -> Change:
        if desired.fields["source_fingerprint"] is None:
            if not self._source_checked:
                return _diff_unchecked_source(desired, observed)
            return self._diff_without_source(desired, observed)
        if observed is None:
            return Change(desired.address, KIND, Action.CREATE,
                          f"no checkpoint at {desired.name}: {_work(desired)}", desired=desired)
        if not observed.fields:
            return Change(desired.address, KIND, Action.REPLACE,
                          f"{desired.name} holds objects but no saxctl manifest: {_work(desired)}, replacing them",
                          desired=desired, observed=observed)
        changes = resource_changes(desired, observed.fields)
        if changes:
            by_path = {change.path: change for change in changes}
            old_version = by_path.get("converter_version")
            if old_version is not None:
                reason = (f"{desired.name} was written by saxctl's converter version {old_version.before}, this "
                          f"saxctl writes version {old_version.after} (uncompressed arrays, sources fingerprinted by "
                          "content): it will be converted again and replaced")
            elif "source_fingerprint" in by_path:
                reason = (f"the content of {desired.params['source_path']} changed since {desired.name} was "
                          "converted: it will be converted again and replaced")
            else:
                first = changes[0]
                reason = (f"{first.path} {first.before} → {first.after}: the checkpoint at {desired.name} "
                          "will be converted again and replaced")
                if first.path == "vocab_size":
                    reason += f" ({desired.params['vocab_reason']})"
            return Change(desired.address, KIND, Action.REPLACE, f"{reason}; {_work(desired)}", changes, desired,
                          observed)
        incomplete = _incomplete(observed)
        if incomplete:
            return Change(desired.address, KIND, Action.CREATE,
                          f"the checkpoint at {desired.name} is incomplete ({incomplete}): the rest will be uploaded",
                          desired=desired, observed=observed)
        return Change(desired.address, KIND, Action.NOOP, "up to date: converted from this source", desired=desired,
                      observed=observed)

    def _diff_without_source(self, desired: Resource, observed: Observed | None) -> Change:
        """No local source: a complete checkpoint of ours is left as it is (and the plan says what it could not
        compare); anything that would need converting is an error at the spec's source path."""
        params = desired.params
        if observed is None:
            state = f"there is no checkpoint at {desired.name} to keep"
        else:
            others = {k: v for k, v in desired.fields.items() if k != "source_fingerprint"}
            changes = field_changes(others, observed.fields, desired.replace_on)
            incomplete = _incomplete(observed)
            if not changes and not incomplete:
                return Change(desired.address, KIND, Action.NOOP,
                              f"kept as it is, not compared with its source: {params['source_missing']}; "
                              f"{desired.name} is complete (converted from {observed.fields['source_fingerprint']})",
                              desired=desired, observed=observed)
            state = (f"the checkpoint at {desired.name} is incomplete ({incomplete})" if incomplete else
                     f"the checkpoint at {desired.name} must be converted again ({changes[0].path} "
                     f"{changes[0].before} → {changes[0].after})")
        raise _problem(params["spec_file"], params["source_position"], params["source_field"],
                       f"{params['source_missing']}, and {state}: saxctl needs the source to convert it")

    def apply(self, change: Change, progress: Progress) -> Observed | None:
        if change.action is Action.DELETE:
            self._delete(change, progress)
            return None
        if change.action not in (Action.CREATE, Action.REPLACE):
            raise ValueError(f"{change.address}: nothing to apply for {change.action.value}")
        from reconciler.checkpoint import pipeline

        resource = change.desired
        planned = pipeline.prepare(Path(resource.params["source_path"]), resource.name, resource.fields["vocab_size"],
                                   storage_client=self._client, staging_base=self._staging_root)
        for note in planned.conversion.notes:
            progress.update(note)
        progress.update(f"staging copy in {planned.staging} "
                        f"({planned.conversion.nbytes / (1 << 30):.1f} GiB, removed after a verified upload)")
        pipeline.run(planned, progress, owner=resource.params["owner"], workers=self._workers)
        return self._read(resource)

    def owned(self, spec_name: str, kinds: frozenset[str], known: Mapping[Address, Observed]) -> Sequence[Owned]:
        """The checkpoints whose manifest names this spec as the one that wrote them, in the buckets the plan found
        (the spec's, and those its checkpoints are in): one listing of manifests per bucket, and one listing and one
        manifest download for each checkpoint the spec does not name."""
        if KIND not in kinds:
            return ()
        from reconciler.checkpoint.gcs_checkpoint import checkpoints_in, parse_gs_url, read_remote

        in_spec = {parse_gs_url(live.remote_id) for address, live in known.items() if address.kind == KIND}
        buckets = {live.outputs["name"]: address for address, live in known.items()
                   if address.kind == gcs_bucket.KIND and "name" in live.outputs}
        buckets.update({bucket_name: None for bucket_name, _ in in_spec if bucket_name not in buckets})
        found_urls = [url for name in sorted(buckets) for url in checkpoints_in(self._client, name)
                      if parse_gs_url(url) not in in_spec]

        def read(url: str) -> Owned | None:
            bucket_name, prefix = parse_gs_url(url)
            resource = Resource(address(f"{bucket_name}/{prefix}"), KIND, url, {}, inside=buckets[bucket_name],
                                remote_id=url)
            live = _observed(resource.address, read_remote(self._client, url))
            return Owned(resource, live) if live is not None and live.owner == spec_name else None

        return [owned for owned in run_each(found_urls, read, "checkpoint-owned") if owned is not None]

    def hazard(self, change: Change, going_inside: Sequence[str]) -> Hazard | None:
        """Converted weights: rebuilt by converting the source again — unless the source is not here, or the spec
        no longer names it (a checkpoint that left the spec)."""
        facts = change.observed.facts
        objects = f" ({facts['objects']} objects)" if facts.get("objects") is not None else ""  # None: offline
        what = f"{change.observed.remote_id}: the converted checkpoint{objects} will be deleted"
        params = change.desired.params if change.desired is not None else {}
        missing = params.get("source_missing") or (
            None if "source_path" in params else "the spec no longer names the checkpoint, nor its source")
        if missing:
            return Hazard(f"{what}, and saxctl cannot convert it again: {missing}", needs_approval=True,
                          destroy_flag=gcs_bucket.FORCE_DELETE_FLAG)  # it is a bucket's content
        return Hazard(f"{what}; saxctl converts it again from its source when the spec asks for it",
                      needs_approval=False)

    def _delete(self, change: Change, progress: Progress) -> None:
        """Markers first, then every object the manifest lists, then the manifest: only what saxctl wrote."""
        from reconciler.checkpoint.gcs_checkpoint import delete_checkpoint

        progress.update(f"deleting {change.address}")
        delete_checkpoint(self._client, change.observed.remote_id)


def _diff_unchecked_source(desired: Resource, observed: Observed | None) -> Change:
    """An offline plan's decision when the source is not there to read: from the spec alone, saying so."""
    unchecked = f"its source {desired.params['source_path']} is not checked offline"
    if observed is None:
        return Change(desired.address, KIND, Action.CREATE,
                      f"no checkpoint at {desired.name}: it will be converted and uploaded ({unchecked})",
                      desired=desired)
    others = {key: value for key, value in desired.fields.items() if key != "source_fingerprint"}
    changes = field_changes(others, observed.fields, desired.replace_on)
    if changes:
        first = changes[0]
        return Change(desired.address, KIND, Action.REPLACE,
                      f"{first.path} {first.before} → {first.after}: the checkpoint at {desired.name} will be "
                      f"converted again and replaced ({unchecked})", changes, desired, observed)
    return Change(desired.address, KIND, Action.NOOP, f"kept as it is ({unchecked})", desired=desired,
                  observed=observed)
