"""saxctl's own records in the admin bucket (every object under saxctl/ but the lock), carried across a replace.

A replaced bucket keeps its name, so the records cannot wait in it. Before the old bucket is emptied each record is
copied to a stash in the data bucket (saxctl/admin-stash/) and the copy checked against its source's crc32c; then
the old bucket is marked (label saxctl-records=stashed). The new bucket is created with the same mark, each stashed
record is copied into it and checked, the stash removed, and the mark last. A run that stops anywhere in between
loses nothing: the mark (or a missing admin bucket) tells the next run to look in the stash, which it restores, and
until then a record is read from the stash wherever the admin bucket lacks it. The admin bucket's copy always wins:
it is either the original or one already restored (or written since from it).

The bucket provider says what a plan saw of the two buckets (`seen`); readers of a record ask `read`, which reads
nothing inside a bucket the plan saw missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from reconciler.errors import SaxctlError
from reconciler.providers.gcs.lock_store import LOCK_OBJECT
from reconciler.providers.google_errors import remote_call

RECORDS_PREFIX = "saxctl/"  # in the admin bucket: the records, and the lock (which is not one)
STASH_PREFIX = "saxctl/admin-stash/"  # in the data bucket, while the admin bucket is replaced
MARK = ("saxctl-records", "stashed")  # the label of an admin bucket whose records may be in the stash
TIMEOUT = 30  # seconds per request


def is_record(name: str) -> bool:
    """Whether an object of a bucket is one of saxctl's records (a stash of them in the data bucket is not)."""
    return name.startswith(RECORDS_PREFIX) and name != LOCK_OBJECT and not name.startswith(STASH_PREFIX)


def stash_name(record: str) -> str:
    return STASH_PREFIX + record.removeprefix(RECORDS_PREFIX)


def record_name(stashed: str) -> str:
    return RECORDS_PREFIX + stashed.removeprefix(STASH_PREFIX)


@dataclass(frozen=True, slots=True)
class _Seen:
    admin_exists: bool
    stashed: frozenset[str]  # names of records (as in the admin bucket) the stash holds


class AdminRecords:
    """The records of one run's spec: where they are, and the steps that carry them across a replace."""

    def __init__(self, client, admin_bucket: str, data_bucket: str):
        self._client = client
        self.admin, self.data = admin_bucket, data_bucket
        self.stash_location = f"gs://{data_bucket}/{STASH_PREFIX}"
        self._seen: _Seen | None = None  # None until a plan looked at the admin bucket

    # --- where the records are -----------------------------------------------------------------------------------

    def seen(self, admin_exists: bool, admin_marked: bool, data_exists: bool | None) -> None:
        """What a plan read of the buckets (data_exists None: not read). The stash is listed only when the admin
        bucket is missing or marked, and the data bucket not known to be missing: a no-op plan makes no call here."""
        look = (admin_marked or not admin_exists) and data_exists is not False
        self._seen = _Seen(admin_exists, frozenset(self._list_stash()) if look else frozenset())

    @property
    def stashed(self) -> frozenset[str]:
        """The records waiting in the stash, as the plan saw them."""
        return self._seen.stashed if self._seen is not None else frozenset()

    def waiting(self) -> frozenset[str]:
        """Before the admin bucket is created: the records waiting in the stash for it, as the plan saw them, or
        listed now when no plan of this process looked (a saved plan applied)."""
        stashed = self._seen.stashed if self._seen is not None else frozenset(self._list_stash())
        self._seen = _Seen(True, stashed)
        return stashed

    def read(self, name: str) -> tuple[bytes, int, str] | None:
        """A record's body, the generation to write it back at, and where it was read: the admin bucket's copy, or
        the stash's where the admin bucket lacks it (generation 0: the admin bucket has no copy). None: neither."""
        seen = self._seen
        location = f"gs://{self.admin}/{name}"
        if seen is None or seen.admin_exists:
            found = self._download(self.admin, name, location)
            if found is not None:
                return found[0], found[1], location
        if seen is None or name not in seen.stashed:
            return None
        location = f"gs://{self.data}/{stash_name(name)}"
        found = self._download(self.data, stash_name(name), location)
        return (found[0], 0, location) if found is not None else None

    def admin_blob(self, name: str):
        return self._client.bucket(self.admin).blob(name)

    # --- carrying them across a replace ----------------------------------------------------------------------------

    def stash(self, say: Callable[[str], None]) -> list[str]:
        """Copy every record of the admin bucket to the stash, each checked; then mark the bucket. The names."""
        admin = self._client.bucket(self.admin)
        records = [blob for blob in self._list(self.admin, RECORDS_PREFIX) if is_record(blob.name)]
        for count, blob in enumerate(records, 1):
            say(f"stashing saxctl's record {count}/{len(records)}: {blob.name} → {self.stash_location}")
            self._copy_checked(admin, blob, self.data, stash_name(blob.name), only_if_absent=False)
        names = {blob.name for blob in records}
        if names or self.stashed:
            self._set_mark(admin, on=True)
        self._seen = _Seen(True, frozenset(names | self.stashed))
        return sorted(names)

    def restore(self, say: Callable[[str], None]) -> list[str]:
        """Copy each stashed record into the admin bucket where it lacks one, checked; remove the stash, then the
        mark. The names restored (an admin copy already there is kept: it is the newer)."""
        data = self._client.bucket(self.data)
        stashed = self._list(self.data, STASH_PREFIX)
        restored = []
        for count, blob in enumerate(stashed, 1):
            name = record_name(blob.name)
            say(f"restoring saxctl's record {count}/{len(stashed)}: {name} from {self.stash_location}")
            if self._copy_checked(data, blob, self.admin, name, only_if_absent=True):
                restored.append(name)
        for blob in stashed:
            self._delete(data, blob)
        self._set_mark(self._client.bucket(self.admin), on=False)
        self._seen = _Seen(True, frozenset())
        return restored

    def _copy_checked(self, source_bucket, blob, target: str, name: str, *, only_if_absent: bool) -> bool:
        """Copy `blob` to gs://target/name and check the copy's crc32c; False when only_if_absent and one was there
        (then that one is kept)."""
        from google.api_core.exceptions import PreconditionFailed

        source = f"gs://{source_bucket.name}/{blob.name}"
        destination = f"gs://{target}/{name}"
        target_bucket = self._client.bucket(target)
        with remote_call("storage.objects.copy", f"{source} → {destination}"):
            try:
                source_bucket.copy_blob(blob, target_bucket, name, if_source_generation_match=blob.generation,
                                        if_generation_match=0 if only_if_absent else None, timeout=TIMEOUT)
                copied = True
            except PreconditionFailed:
                if not only_if_absent:
                    raise
                copied = False
        if copied:
            with remote_call("storage.objects.get", destination):
                landed = target_bucket.get_blob(name, timeout=TIMEOUT)
            if landed is None or landed.crc32c != blob.crc32c:
                raise SaxctlError(
                    f"the copy of {source} at {destination} does not match it (crc32c "
                    f"{getattr(landed, 'crc32c', None)}, not {blob.crc32c}): nothing was deleted",
                    hint="Run the apply again: the copy is made again from the same source.")
        return copied

    def _set_mark(self, bucket, *, on: bool) -> None:
        from google.api_core.exceptions import NotFound

        with remote_call("storage.buckets.patch", f"gs://{bucket.name}"):
            try:
                bucket.reload(timeout=TIMEOUT)
            except NotFound:  # gone already (a retried replace): nothing to mark
                return
            labels = dict(bucket.labels)
            if on:
                labels[MARK[0]] = MARK[1]
            elif MARK[0] in labels:
                del labels[MARK[0]]
            else:
                return
            bucket.labels = labels
            bucket.patch(timeout=TIMEOUT)

    def _delete(self, bucket, blob) -> None:
        from google.api_core.exceptions import NotFound

        with remote_call("storage.objects.delete", f"gs://{bucket.name}/{blob.name}"):
            try:
                bucket.delete_blob(blob.name, if_generation_match=blob.generation, timeout=TIMEOUT)
            except NotFound:
                pass

    def _list_stash(self) -> list[str]:
        return [record_name(blob.name) for blob in self._list(self.data, STASH_PREFIX)]

    def _list(self, bucket: str, prefix: str) -> list:
        from google.api_core.exceptions import NotFound

        with remote_call("storage.objects.list", f"gs://{bucket}/{prefix}"):
            try:
                return list(self._client.list_blobs(bucket, prefix=prefix, timeout=TIMEOUT))
            except NotFound:
                return []

    def _download(self, bucket: str, name: str, location: str) -> tuple[bytes, int] | None:
        from google.api_core.exceptions import NotFound

        blob = self._client.bucket(bucket).blob(name)
        with remote_call("storage.objects.get", location):
            try:
                body = blob.download_as_bytes(timeout=TIMEOUT, retry=None)
            except NotFound:
                return None
        return body, int(blob.generation)
