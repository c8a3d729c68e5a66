"""The gcs.bucket resource: desired buckets from the spec, and observe / diff / apply over storage v1."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from reconciler.engine.diffing import field_changes, show_value
from reconciler.engine.provider import Progress
from reconciler.engine.resource import Action, Change, Observed, Resource
from reconciler.errors import ConflictError
from reconciler.providers.google_errors import remote_call
from reconciler.providers.parallel import observe_each
from reconciler.spec.model import Bucket, Spec

KIND = "gcs.bucket"
MANAGED_BY = "managed-by"  # label key: value "saxctl" on everything saxctl created
SPEC_LABEL = "saxctl-spec"  # label key: value metadata.name of the owning spec
SAXCTL_PREFIX = "saxctl/"  # objects saxctl itself keeps in the admin bucket (the lock): not user data
TIMEOUT = 30  # seconds per HTTP request


def address(role: str) -> str:
    return f"{KIND}.{role}"


def desired_resources(spec: Spec) -> list[Resource]:
    # The lock lives in the admin bucket: everything else depends on it, so a destroy deletes it last.
    return [
        _desired(spec, "admin", spec.buckets.admin, own_prefix=SAXCTL_PREFIX, depends_on=()),
        _desired(spec, "data", spec.buckets.data, own_prefix=None, depends_on=(address("admin"),)),
    ]


def _desired(spec: Spec, role: str, bucket: Bucket, own_prefix: str | None, depends_on: tuple[str, ...]) -> Resource:
    fields: dict[str, Any] = {
        "location": bucket.location.upper(),
        "uniformBucketLevelAccess": bucket.uniform_access,
        "labels": {**bucket.labels, MANAGED_BY: "saxctl", SPEC_LABEL: spec.name},
    }
    if bucket.storage_class is not None:
        fields["storageClass"] = bucket.storage_class
    if bucket.versioning is not None:
        fields["versioning"] = bucket.versioning
    return Resource(
        address=address(role),
        kind=KIND,
        name=bucket.name,
        fields=fields,
        depends_on=depends_on,
        replace_on=frozenset({"location"}),
        params={"project": spec.project.id, "own_prefix": own_prefix},
        spec_field=f"buckets.{role}",
    )


def _observed(resource_address: str, bucket) -> Observed:
    labels = dict(bucket.labels or {})
    owner = labels.get(SPEC_LABEL, "") if labels.get(MANAGED_BY) == "saxctl" else None
    return Observed(
        address=resource_address,
        remote_id=f"gs://{bucket.name}",
        fields={
            "location": (bucket.location or "").upper(),
            "storageClass": bucket.storage_class,
            "uniformBucketLevelAccess": bool(bucket.iam_configuration.uniform_bucket_level_access_enabled),
            "versioning": bool(bucket.versioning_enabled),
            "labels": labels,
        },
        fingerprint=f"metageneration {bucket.metageneration}",
        owner=owner,
        facts={"metageneration": int(bucket.metageneration)},
    )


class BucketProvider:
    kinds = frozenset({KIND})

    def __init__(self, client, *, force_delete: bool = False):
        self._client = client
        self._force_delete = force_delete  # delete buckets that still hold objects (with the objects)

    def observe(self, desired: Sequence[Resource]) -> Mapping[str, Observed | None]:
        """One GET per bucket, in parallel: the whole cost of a no-op plan."""
        return observe_each(desired, self._get, "gcs-observe")

    def _get(self, resource: Resource) -> Observed | None:
        from google.api_core.exceptions import NotFound

        with remote_call("storage.buckets.get", f"gs://{resource.name}"):
            try:
                bucket = self._client.get_bucket(resource.name, timeout=TIMEOUT, retry=None)
            except NotFound:
                return None
        return _observed(resource.address, bucket)

    def diff(self, desired: Resource, observed: Observed | None) -> Change:
        if observed is None:
            return Change(desired.address, KIND, Action.CREATE, f"bucket gs://{desired.name} does not exist",
                          desired=desired)
        changes = field_changes(desired.fields, observed.fields, desired.replace_on)
        if not changes:
            return Change(desired.address, KIND, Action.NOOP, "up to date", desired=desired, observed=observed)
        forcing = [c for c in changes if c.forces_replacement]
        if forcing:
            first = forcing[0]
            reason = (f"{first.path} {first.before} → {first.after} cannot change in place: "
                      f"the bucket will be deleted and created again")
            return Change(desired.address, KIND, Action.REPLACE, reason, changes, desired, observed)
        reason = "; ".join(f"{c.path}: {show_value(c.before)} → {show_value(c.after)}" for c in changes)
        return Change(desired.address, KIND, Action.UPDATE, reason, changes, desired, observed)

    def apply(self, change: Change, progress: Progress) -> Observed | None:
        resource = change.desired
        if change.action is Action.CREATE:
            return self._create(resource, progress)
        if change.action is Action.UPDATE:
            return self._update(resource, change, progress)
        if change.action is Action.REPLACE:
            self._delete(resource, progress)
            return self._create(resource, progress)
        if change.action is Action.DELETE:
            self._delete(resource, progress)
            return None
        raise ValueError(f"{change.address}: nothing to apply for {change.action.value}")

    def _create(self, resource: Resource, progress: Progress) -> Observed:
        from google.api_core.exceptions import Conflict

        bucket = self._client.bucket(resource.name)
        self._set_fields(bucket, resource.fields)
        progress.update(f"creating gs://{resource.name} in {resource.fields['location']}")
        with remote_call("storage.buckets.insert", f"gs://{resource.name}"):
            try:
                created = self._client.create_bucket(
                    bucket, project=resource.params["project"], location=resource.fields["location"],
                    timeout=TIMEOUT, retry=None,
                )
            except Conflict:
                return self._already_created(resource)
        return _observed(resource.address, created)

    def _already_created(self, resource: Resource) -> Observed:
        """A 409 on create: fine if it is ours (an earlier attempt of this very run, or a crashed run), else a conflict."""
        observed = self._get(resource)
        spec_name = resource.fields["labels"][SPEC_LABEL]
        if observed is None or observed.owner != spec_name:
            raise ConflictError(
                f"bucket name gs://{resource.name} is taken: it exists in another project or is not saxctl's "
                f"(bucket names are global)",
                hint="Pick another name in the spec, or run `saxctl plan --adopt` if the bucket is yours.",
            )
        return observed

    def _update(self, resource: Resource, change: Change, progress: Progress) -> Observed:
        from google.api_core.exceptions import PreconditionFailed

        bucket = self._client.bucket(resource.name)
        changed_fields = {c.path.split(".", 1)[0] for c in change.field_changes}
        self._set_fields(bucket, {key: resource.fields[key] for key in changed_fields})
        progress.update(f"updating {', '.join(sorted(changed_fields))}")
        with remote_call("storage.buckets.patch", f"gs://{resource.name}"):
            try:
                bucket.patch(if_metageneration_match=change.observed.facts["metageneration"], timeout=TIMEOUT,
                             retry=None)
            except PreconditionFailed:
                raise ConflictError(
                    f"gs://{resource.name} changed while saxctl was updating it",
                    hint="Run `saxctl plan` again to see its current state.",
                ) from None
        return _observed(resource.address, bucket)

    @staticmethod
    def _set_fields(bucket, fields: Mapping[str, Any]) -> None:
        if "storageClass" in fields:
            bucket.storage_class = fields["storageClass"]
        if "uniformBucketLevelAccess" in fields:
            bucket.iam_configuration.uniform_bucket_level_access_enabled = fields["uniformBucketLevelAccess"]
        if "versioning" in fields:
            bucket.versioning_enabled = fields["versioning"]
        if "labels" in fields:
            # A patch merges label keys: the labels saxctl does not own stay as they are.
            bucket.labels = dict(fields["labels"])

    def _delete(self, resource: Resource, progress: Progress) -> None:
        from google.api_core.exceptions import NotFound

        blobs = self._blobs(resource)
        user_blobs = [b for b in blobs if not (resource.params.get("own_prefix") and
                                              b.name.startswith(resource.params["own_prefix"]))]
        if user_blobs and not self._force_delete:
            examples = ", ".join(b.name for b in user_blobs[:3])
            raise ConflictError(
                f"bucket gs://{resource.name} still holds objects ({examples}{', ...' if len(user_blobs) > 3 else ''}): "
                "saxctl does not delete data unless told to",
                hint="Rerun with --force-delete-buckets to delete the bucket together with its objects.",
            )
        for count, blob in enumerate(blobs, 1):
            progress.update(f"deleting object {count}/{len(blobs)}: {blob.name}")
            with remote_call("storage.objects.delete", f"gs://{resource.name}/{blob.name}"):
                try:
                    blob.delete(timeout=TIMEOUT, retry=None)
                except NotFound:
                    pass
        progress.update(f"deleting gs://{resource.name}")
        with remote_call("storage.buckets.delete", f"gs://{resource.name}"):
            try:
                self._client.bucket(resource.name).delete(timeout=TIMEOUT, retry=None)
            except NotFound:
                pass

    def _blobs(self, resource: Resource) -> list:
        from google.api_core.exceptions import NotFound

        with remote_call("storage.objects.list", f"gs://{resource.name}"):
            try:
                return list(self._client.list_blobs(resource.name, versions=True, timeout=TIMEOUT, retry=None))
            except NotFound:
                return []
