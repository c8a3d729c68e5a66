"""A converted checkpoint in GCS: read its manifest and markers, upload a local one (parallel, crc32c, resumable)."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from reconciler.checkpoint.convert import is_committed
from reconciler.checkpoint.manifest import MANIFEST_NAME, MARKERS, Manifest, load_manifest
from reconciler.engine.provider import Progress
from reconciler.errors import RemoteError, SaxctlError
from reconciler.providers.google_errors import remote_call

RESUMABLE_CHUNK = 32 << 20  # files above this go up in resumable chunks (a multiple of 256 KiB, as GCS requires)
TIMEOUT = 120  # seconds per request


def parse_gs_url(url: str) -> tuple[str, str]:
    """gs://bucket/a/b → ("bucket", "a/b")."""
    if not url.startswith("gs://") or len(url) <= 5:
        raise SaxctlError(f"{url}: not a gs://BUCKET/PATH URL")
    bucket, _, prefix = url[5:].partition("/")
    prefix = prefix.strip("/")
    if not bucket or not prefix:
        example = f"gs://{bucket or 'BUCKET'}/checkpoints/checkpoint_00000000"
        raise SaxctlError(f"{url}: give a path inside the bucket, e.g. {example}")
    return bucket, prefix


@dataclass(frozen=True, slots=True)
class RemoteCheckpoint:
    """What one listing (and one small download) tell about a checkpoint directory in GCS."""

    url: str
    crc32c_by_path: dict[str, str]  # path inside the checkpoint → crc32c, for every object under it
    manifest: Manifest | None
    generation: str  # of the manifest object: changes whenever a run rewrites it

    @property
    def committed(self) -> bool:
        return all(marker in self.crc32c_by_path for marker in MARKERS)

    def missing_or_different(self) -> list[str]:
        """Files the manifest lists that are absent or whose crc32c differs."""
        if self.manifest is None:
            return []
        return [p for p, info in self.manifest.files.items() if self.crc32c_by_path.get(p) != info["crc32c"]]


def read_remote(client, url: str) -> RemoteCheckpoint:
    bucket_name, prefix = parse_gs_url(url)
    crcs: dict[str, str] = {}
    generation = ""
    from google.api_core.exceptions import NotFound

    with remote_call("storage.objects.list", f"gs://{bucket_name}/{prefix}/"):
        try:
            for blob in client.list_blobs(bucket_name, prefix=prefix + "/", timeout=TIMEOUT):
                relative = blob.name[len(prefix) + 1 :]
                crcs[relative] = blob.crc32c
                if relative == MANIFEST_NAME:
                    generation = str(blob.generation)
        except NotFound:  # no bucket yet (the plan may be about to create it): no checkpoint either
            return RemoteCheckpoint(url, {}, None, "")
    manifest = None
    if MANIFEST_NAME in crcs:
        target = f"gs://{bucket_name}/{prefix}/{MANIFEST_NAME}"
        with remote_call("storage.objects.get", target):
            text = client.bucket(bucket_name).blob(f"{prefix}/{MANIFEST_NAME}").download_as_text(timeout=TIMEOUT)
        manifest = Manifest.from_json(text, target)
    return RemoteCheckpoint(url, crcs, manifest, generation)


class _ByteCounter:
    """Bytes sent so far over all files; a retried chunk is not counted twice (we track each file's furthest read)."""

    def __init__(self, total: int, progress: Progress):
        self.total, self.done, self.progress = total, 0, progress
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        with self._lock:
            self.done += count
            self.progress.advance(self.done, self.total)


class _CountingReader(io.RawIOBase):
    def __init__(self, handle, counter: _ByteCounter):
        self._handle, self._counter, self._furthest = handle, counter, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        position = self._handle.tell()
        if position > self._furthest:
            self._counter.add(position - self._furthest)
            self._furthest = position
        return data


@dataclass(frozen=True, slots=True)
class UploadResult:
    url: str
    uploaded: int
    skipped: int  # objects already there with the same crc32c
    bytes_uploaded: int


def upload(client, root: Path, url: str, workers: int = 8, progress: Progress | None = None) -> UploadResult:
    """Upload a committed local checkpoint: data first, in parallel, each verified by crc32c; markers last.

    Resumes by comparing crc32c: objects already in GCS with the manifest's crc32c are not sent again.
    """
    from google.api_core.exceptions import NotFound
    from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
    from google.cloud.storage.retry import DEFAULT_RETRY

    # Re-sending the same bytes to the same name is harmless, so uploads retry 429/5xx like reads do.
    retry = DEFAULT_RETRY.with_timeout(300)

    root = Path(root)
    manifest = load_manifest(root)
    if manifest is None or not is_committed(root):
        raise SaxctlError(f"{root}: not a complete converted checkpoint (no manifest or commit markers); "
                          "convert it first")
    bucket_name, prefix = parse_gs_url(url)
    bucket = client.bucket(bucket_name)
    remote = read_remote(client, url)
    pending = [p for p, info in sorted(manifest.files.items()) if remote.crc32c_by_path.get(p) != info["crc32c"]]
    manifest_text = (root / MANIFEST_NAME).read_text()
    same_manifest = remote.manifest is not None and remote.manifest.to_json() == manifest.to_json()
    if not pending and remote.committed and same_manifest:
        return UploadResult(url, 0, len(manifest.files), 0)

    for marker in reversed(MARKERS):  # root marker first: GCS must never show half-replaced data as committed
        if marker in remote.crc32c_by_path:
            with remote_call("storage.objects.delete", f"gs://{bucket_name}/{prefix}/{marker}"):
                try:
                    bucket.blob(f"{prefix}/{marker}").delete(timeout=TIMEOUT, retry=retry)
                except NotFound:  # a retried delete whose first attempt went through
                    pass

    total = sum(manifest.files[p]["size"] for p in pending)
    counter = _ByteCounter(total, progress) if progress is not None else None

    def send(relative: str) -> None:
        expected = manifest.files[relative]["crc32c"]
        target = f"gs://{bucket_name}/{prefix}/{relative}"
        size = manifest.files[relative]["size"]
        # Big files go in resumable chunks: a dropped connection costs one chunk, not the whole array.
        blob = bucket.blob(f"{prefix}/{relative}", chunk_size=RESUMABLE_CHUNK if size > RESUMABLE_CHUNK else None)
        with open(root / relative, "rb") as handle, remote_call("storage.objects.insert", target):
            reader = _CountingReader(handle, counter) if counter is not None else handle
            try:
                blob.upload_from_file(
                    reader, size=size, checksum="crc32c", crc32c_checksum_value=expected, timeout=TIMEOUT, retry=retry
                )
            except (DataCorruption, InvalidResponse) as error:
                raise RemoteError(f"storage.objects.insert {target}: {error}") from None
        if blob.crc32c != expected:
            raise RemoteError(f"storage.objects.insert {target}: GCS reports crc32c {blob.crc32c}, "
                              f"the file has {expected}")

    if pending:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="upload") as pool:
            for _ in pool.map(send, pending):
                pass
    with remote_call("storage.objects.insert", f"gs://{bucket_name}/{prefix}/{MANIFEST_NAME}"):
        bucket.blob(f"{prefix}/{MANIFEST_NAME}").upload_from_string(
            manifest_text, content_type="application/json", timeout=TIMEOUT, retry=retry
        )
    for marker in MARKERS:
        with remote_call("storage.objects.insert", f"gs://{bucket_name}/{prefix}/{marker}"):
            bucket.blob(f"{prefix}/{marker}").upload_from_string(
                f"Checkpoint commit was successful to {url}\n", timeout=TIMEOUT, retry=retry
            )
    return UploadResult(url, len(pending), len(manifest.files) - len(pending), total)


def delete_checkpoint(client, url: str) -> int:
    """Delete what a saxctl upload wrote at url: markers first (so it stops looking committed), then the rest."""
    from google.api_core.exceptions import NotFound

    bucket_name, prefix = parse_gs_url(url)
    remote = read_remote(client, url)
    if remote.manifest is None:
        raise SaxctlError(f"{url}: no saxctl manifest; refusing to delete objects saxctl did not write")
    ours = [*reversed(MARKERS), *sorted(remote.manifest.files), MANIFEST_NAME]
    bucket = client.bucket(bucket_name)
    deleted = 0
    for relative in ours:
        if relative in remote.crc32c_by_path:
            with remote_call("storage.objects.delete", f"gs://{bucket_name}/{prefix}/{relative}"):
                try:
                    bucket.blob(f"{prefix}/{relative}").delete(timeout=TIMEOUT)
                    deleted += 1
                except NotFound:
                    pass
    return deleted
