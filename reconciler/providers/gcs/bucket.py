"""The gcs.bucket resource: desired buckets from the spec, and observe / diff / apply over storage v1."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from reconciler.engine.address import Address
from reconciler.engine.diffing import planned_change
from reconciler.engine.lock import LockHome, LockStore
from reconciler.engine.provider import Owned, Progress, Provider
from reconciler.engine.resource import Action, Change, Hazard, Observed, Resource
from reconciler.errors import ConflictError
from reconciler.providers.google_errors import remote_call
from reconciler.providers.ownership import SPEC_LABEL, mark, owner as _owner
from reconciler.providers.parallel import observe_each
from reconciler.spec.model import Bucket, Spec
from reconciler.units import bytes_text

KIND = "gcs.bucket"
SAXCTL_PREFIX = "saxctl/"  # objects saxctl itself keeps in its buckets (the lock): not user data
TIMEOUT = 30  # seconds per HTTP request
LISTED_AT_MOST = 1000  # objects counted when telling what a delete would lose
FORCE_DELETE_FLAG = "--force-delete-buckets"  # the destroy flag that agrees to deleting buckets with what they hold


def address(role: str) -> Address:
    return Address(KIND, role)


def url(bucket_name: str) -> str:
    return f"gs://{bucket_name}"


def desired_resources(spec: Spec) -> list[Resource]:
    return [_desired(spec, "admin", spec.buckets.admin), _desired(spec, "data", spec.buckets.data)]


def lock_homes(spec: Spec, clients) -> list[LockHome]:
    """The run's lock lives in the admin bucket; it moves to the data bucket while the admin bucket is replaced."""
    from reconciler.providers.gcs.lock_store import GcsLockStore

    return [LockHome(address("admin"), GcsLockStore(clients.storage, spec.buckets.admin.name)),
            LockHome(address("data"), GcsLockStore(clients.storage, spec.buckets.data.name))]


def admin_record_store(spec: Spec, clients, object_name: str) -> LockStore:
    """A record of saxctl's own beside the lock in the admin bucket (e.g. saxctl/drift.json), generation-checked."""
    from reconciler.providers.gcs.lock_store import GcsLockStore

    return GcsLockStore(clients.storage, spec.buckets.admin.name, object_name)


def _desired(spec: Spec, role: str, bucket: Bucket) -> Resource:
    fields: dict[str, Any] = {
        "location": bucket.location.upper(),
        "uniformBucketLevelAccess": bucket.uniform_access,
        "labels": {**bucket.labels, **mark(spec.name)},
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
        replace_on=frozenset({"location"}),
        params={"project": spec.project.id, "role": role},
        spec_field=f"buckets.{role}",
        remote_id=url(bucket.name),
    )


def _observed(resource_address: str, bucket) -> Observed:
    labels = dict(bucket.labels or {})
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
        owner=_owner(labels),
        facts={"metageneration": int(bucket.metageneration),
               "updated": bucket.updated.isoformat() if bucket.updated else None},  # who changed it: GCS says when
        outputs={"name": bucket.name, "url": url(bucket.name)},
    )


class BucketProvider(Provider):
    kinds = frozenset({KIND})

    def __init__(self, client, project: str | None = None):
        self._client = client
        self._project = project  # where owned() looks for buckets that left the spec

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
        return planned_change(desired, observed, absent=f"bucket gs://{desired.name} does not exist", noun="bucket")

    def apply(self, change: Change, progress: Progress) -> Observed | None:
        resource = change.desired
        if change.action is Action.CREATE:
            return self._create(resource, progress)
        if change.action is Action.UPDATE:
            return self._update(resource, change, progress)
        if change.action is Action.REPLACE:  # a bucket name is global: the old one must go before the new one
            self._delete(change, progress)
            return self._create(resource, progress)
        if change.action is Action.DELETE:
            self._delete(change, progress)
            return None
        raise ValueError(f"{change.address}: nothing to apply for {change.action.value}")

    def owned(self, spec_name: str, kinds: frozenset[str]) -> Sequence[Owned]:
        """The project's buckets that carry this spec's labels (one list call)."""
        if not self._project:
            return ()
        with remote_call("storage.buckets.list", f"project {self._project}"):
            buckets = list(self._client.list_buckets(project=self._project, timeout=TIMEOUT, retry=None))
        found = []
        for live in buckets:
            if _owner(dict(live.labels or {})) != spec_name:
                continue
            resource = Resource(Address(KIND, live.name), KIND, live.name, {},
                                params={"project": self._project, "role": "pruned"}, remote_id=url(live.name))
            found.append(Owned(resource, _observed(resource.address, live)))
        return found

    def hazard(self, change: Change, going_inside: Sequence[str]) -> Hazard | None:
        """The objects saxctl did not write that the delete would take with it (what is inside and goes first
        in the same plan, such as a checkpoint, is not counted)."""
        name = change.desired.name
        kept_prefixes = [SAXCTL_PREFIX] + [inner.removeprefix(url(name) + "/").rstrip("/") + "/"
                                           for inner in going_inside if inner.startswith(url(name) + "/")]
        with remote_call("storage.objects.list", url(name)):
            from google.api_core.exceptions import NotFound

            try:
                listed = list(self._client.list_blobs(name, max_results=LISTED_AT_MOST, timeout=TIMEOUT, retry=None))
            except NotFound:
                return None
        lost = [blob for blob in listed if not any(blob.name.startswith(prefix) for prefix in kept_prefixes)]
        if not lost:
            return None
        count = f"at least {len(lost)}" if len(listed) >= LISTED_AT_MOST else str(len(lost))
        size = bytes_text(sum(blob.size or 0 for blob in lost))
        examples = ", ".join(blob.name for blob in lost[:3]) + (", ..." if len(lost) > 3 else "")
        what = f"{url(name)} holds {count} object(s) saxctl did not write ({size}: {examples})"
        if change.desired.params.get("role") == "admin":
            what += ", among them the Sax root (the admin server's state)"
        return Hazard(f"{what}: they will be deleted with it", needs_approval=True, destroy_flag=FORCE_DELETE_FLAG)

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

    def _delete(self, change: Change, progress: Progress) -> None:
        """Only what the plan said would go: objects saxctl did not write need the approval the plan recorded."""
        from google.api_core.exceptions import NotFound

        resource = change.desired
        blobs = self._blobs(resource)
        user_blobs = [b for b in blobs if not b.name.startswith(SAXCTL_PREFIX)]
        approved = change.hazard is not None and change.hazard.approved_by is not None
        if user_blobs and not approved:
            examples = ", ".join(b.name for b in user_blobs[:3])
            raise ConflictError(
                f"bucket gs://{resource.name} still holds objects ({examples}{', ...' if len(user_blobs) > 3 else ''}) "
                "that the plan did not agree to delete: nothing was deleted",
                hint="Run `saxctl plan` again to see them; saxctl does not delete data unless told to.",
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

