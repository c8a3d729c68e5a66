"""The lock object in a bucket: created with ifGenerationMatch=0, rewritten and deleted only at the generation we hold."""

from __future__ import annotations

from reconciler.engine.lock import LockHomeMissing
from reconciler.providers.google_errors import remote_call

LOCK_OBJECT = "saxctl/lock.json"
TIMEOUT = 30


class GcsLockStore:
    def __init__(self, client, bucket_name: str, object_name: str = LOCK_OBJECT):
        self._bucket = client.bucket(bucket_name)
        self._object_name = object_name
        self.location = f"gs://{bucket_name}/{object_name}"

    def create(self, body: bytes) -> int | None:
        return self._write(body, 0)

    def replace(self, body: bytes, generation: int) -> int | None:
        return self._write(body, generation)

    def _write(self, body: bytes, generation: int) -> int | None:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        blob = self._bucket.blob(self._object_name)
        with remote_call("storage.objects.insert", self.location):
            try:
                blob.upload_from_string(body, content_type="application/json", if_generation_match=generation,
                                        timeout=TIMEOUT)
            except PreconditionFailed:
                return None
            except NotFound:
                if generation == 0:
                    raise LockHomeMissing(self.location) from None
                return None
        return int(blob.generation)

    def read(self) -> tuple[bytes, int] | None:
        from google.api_core.exceptions import NotFound

        with remote_call("storage.objects.get", self.location):
            try:
                blob = self._bucket.get_blob(self._object_name, timeout=TIMEOUT)
                if blob is None:
                    return None
                return blob.download_as_bytes(if_generation_match=blob.generation, timeout=TIMEOUT), int(blob.generation)
            except NotFound:
                return None

    def delete(self, generation: int) -> bool:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        with remote_call("storage.objects.delete", self.location):
            try:
                self._bucket.delete_blob(self._object_name, if_generation_match=generation, timeout=TIMEOUT)
            except (NotFound, PreconditionFailed):
                return False
        return True
