"""The gcs.bucket resource: desired buckets from the spec, and observe / diff / apply over storage v1."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Sequence

from reconciler.engine.address import Address
from reconciler.engine.diffing import planned_change
from reconciler.engine.lock import LockHome, LockStore
from reconciler.engine.provider import Owned, Progress, Provider
from reconciler.engine.resource import Action, Change, Hazard, Observed, Resource
from reconciler.errors import ConflictError
from reconciler.providers.google_errors import remote_call
from reconciler.providers.ownership import SPEC_LABEL, mark, owner as _owner
from reconciler.providers.gcs.records import MARK, STASH_PREFIX, AdminRecords, is_record
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
    return _bucket_observed(resource_address, bucket.name, {
        "location": (bucket.location or "").upper(),
        "storageClass": bucket.storage_class,
        "uniformBucketLevelAccess": bool(bucket.iam_configuration.uniform_bucket_level_access_enabled),
        "versioning": bool(bucket.versioning_enabled),
        "labels": dict(bucket.labels or {}),
    }, int(bucket.metageneration), bucket.updated.isoformat() if bucket.updated else None)


def _as_created(resource_address: str, applied: Resource) -> Observed:
    """The bucket applying `applied` leaves: its fields with the server's defaults (Standard storage, no versioning)."""
    fields = applied.fields
    return _bucket_observed(resource_address, applied.name, {
        "location": fields["location"], "storageClass": fields.get("storageClass", "STANDARD"),
        "uniformBucketLevelAccess": fields["uniformBucketLevelAccess"], "versioning": fields.get("versioning", False),
        "labels": dict(fields["labels"]),
    }, None, None)


def _bucket_observed(resource_address: str, name: str, fields: Mapping[str, Any], metageneration: int | None,
                     updated: str | None) -> Observed:
    labels = fields["labels"]
    return Observed(
        address=resource_address,
        remote_id=f"gs://{name}",
        fields=fields,
        fingerprint=f"metageneration {metageneration if metageneration is not None else '(not read: offline)'}",
        owner=_owner(labels),
        facts={"metageneration": metageneration, "records_marked": labels.get(MARK[0]) == MARK[1],
               "updated": updated},  # who changed it: GCS says when
        outputs={"name": name, "url": url(name)},
    )


class BucketProvider(Provider):
    kinds = frozenset({KIND})

    def __init__(self, client, project: str | None = None, records: AdminRecords | None = None):
        self._client = client
        self._project = project  # where owned() looks for buckets that left the spec
        self._records = records  # saxctl's records in the admin bucket, carried across its replace

    def observe(self, desired: Sequence[Resource]) -> Mapping[str, Observed | None]:
        """One GET per bucket, in parallel: the whole cost of a no-op plan (the stash of saxctl's records is looked
        for only when the admin bucket is missing or marked)."""
        observed = observe_each(desired, self._get, "gcs-observe")
        by_role = {resource.params["role"]: observed[resource.address] for resource in desired}
        if self._records is not None and "admin" in by_role:
            admin = by_role["admin"]
            self._records.seen(admin_exists=admin is not None,
                               admin_marked=admin is not None and admin.facts.get("records_marked", False),
                               data_exists=(by_role["data"] is not None) if "data" in by_role else None)
        return observed

    def modelled(self, desired: Resource, applied: Resource | None) -> Observed | None:
        if applied is None or applied.name != desired.name:
            return None
        return _as_created(desired.address, applied)

    def left_behind(self, applied: Resource) -> Owned | None:
        """As owned() finds it: by its name, its role forgotten."""
        resource = Resource(Address(KIND, applied.name), KIND, applied.name, {},
                            params={"project": applied.params["project"], "role": "pruned"}, remote_id=url(applied.name))
        return Owned(resource, _as_created(resource.address, applied))

    def _get(self, resource: Resource) -> Observed | None:
        from google.api_core.exceptions import NotFound

        with remote_call("storage.buckets.get", f"gs://{resource.name}"):
            try:
                bucket = self._client.get_bucket(resource.name, timeout=TIMEOUT, retry=None)
            except NotFound:
                return None
        return _observed(resource.address, bucket)

    def diff(self, desired: Resource, observed: Observed | None) -> Change:
        change = planned_change(desired, observed, absent=f"bucket gs://{desired.name} does not exist", noun="bucket")
        if desired.params.get("role") != "admin" or self._records is None:
            return change
        marked = observed is not None and observed.facts.get("records_marked", False)
        if not (self._records.stashed or marked):
            return change
        # An earlier run stopped while replacing the admin bucket: its records wait in the stash.
        restore = (f"saxctl's records stashed in {self._records.stash_location} by a run that stopped while "
                   f"replacing gs://{desired.name} are restored into it: "
                   f"{', '.join(sorted(self._records.stashed)) or 'none left (the mark is removed)'}")
        if change.action is Action.NOOP:
            return replace(change, action=Action.UPDATE, reason=restore)
        return replace(change, reason=f"{change.reason}; {restore}")

    def apply(self, change: Change, progress: Progress) -> Observed | None:
        resource = change.desired
        carries_records = self._records is not None and resource.params.get("role") == "admin"
        if change.action is Action.CREATE:
            return self._create_carrying_records(resource, progress) if carries_records else \
                self._create(resource, progress)
        if change.action is Action.UPDATE:
            updated = self._update(resource, change, progress) if change.field_changes else change.observed
            if carries_records and (self._records.stashed or change.observed.facts.get("records_marked", False)):
                self._records.restore(progress.update)
                updated = self._get(resource)
            return updated
        if change.action is Action.REPLACE:  # a bucket name is global: the old one must go before the new one
            if carries_records:
                self._records.stash(progress.update)
            self._delete(change, progress)
            return self._create_carrying_records(resource, progress) if carries_records else \
                self._create(resource, progress)
        if change.action is Action.DELETE:
            self._delete(change, progress)
            return None
        raise ValueError(f"{change.address}: nothing to apply for {change.action.value}")

    def owned(self, spec_name: str, kinds: frozenset[str], known: Mapping[Address, Observed]) -> Sequence[Owned]:
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
        in the same plan, such as a checkpoint, is not counted). The admin bucket is the Sax root and holds saxctl's
        records: deleting or replacing it always needs a yes, whatever it holds."""
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
        held = ""
        if lost:
            count = f"at least {len(lost)}" if len(listed) >= LISTED_AT_MOST else str(len(lost))
            size = bytes_text(sum(blob.size or 0 for blob in lost))
            examples = ", ".join(blob.name for blob in lost[:3]) + (", ..." if len(lost) > 3 else "")
            held = f"{url(name)} holds {count} object(s) saxctl did not write ({size}: {examples})"
        records = sorted(blob.name for blob in listed if is_record(blob.name))
        if change.desired.params.get("role") == "admin" or records:  # (a pruned bucket with records was the admin)
            return Hazard(_admin_loss(name, held, records, change.action), needs_approval=True,
                          destroy_flag=FORCE_DELETE_FLAG)
        stashed = [blob.name for blob in listed if blob.name.startswith(STASH_PREFIX)]
        if stashed:  # a run stopped while replacing the admin bucket (an apply that keeps this bucket restores them)
            stash = (f"{url(name)} holds saxctl's records stashed while the admin bucket was replaced "
                     f"({', '.join(stashed)})")
            held = f"{held}; {stash}" if held else stash
        if not held:
            return None
        return Hazard(f"{held}: they will be deleted with it", needs_approval=True, destroy_flag=FORCE_DELETE_FLAG)

    def _create_carrying_records(self, resource: Resource, progress: Progress) -> Observed:
        """The admin bucket: created marked while records wait in the stash, which is then restored into it."""
        if not self._records.waiting():
            return self._create(resource, progress)
        self._create(resource, progress, extra_labels=dict([MARK]))
        self._records.restore(progress.update)
        return self._get(resource)

    def _create(self, resource: Resource, progress: Progress, extra_labels: Mapping[str, str] | None = None
                ) -> Observed:
        from google.api_core.exceptions import Conflict

        bucket = self._client.bucket(resource.name)
        self._set_fields(bucket, {**resource.fields, "labels": {**resource.fields["labels"], **(extra_labels or {})}})
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



def _admin_loss(name: str, held: str, records: list[str], action: Action) -> str:
    """What deleting or replacing the admin bucket loses, in the plan's words."""
    root = f"{url(name)} is the Sax root: its config, its address and the published models (sax-root/) go with it"
    what = f"{root}; {held}, deleted with it" if held else root
    named = ", ".join(records) or "none yet"
    if action is Action.REPLACE:
        return f"{what}; saxctl's own records ({named}) are carried to the new bucket"
    return f"{what}; so do saxctl's own records ({named})"
