"""A converted checkpoint in GCS: read its manifest and markers, upload a local one (parallel, crc32c, resumable)."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from reconciler.checkpoint.manifest import MANIFEST_NAME, MARKERS, Manifest, is_committed, load_manifest
from reconciler.checkpoint.resumable import CHUNK_BYTES, SESSIONS_NAME, TIMEOUT, SessionStore, clean_errors
from reconciler.checkpoint.resumable import send as send_resumable
from reconciler.engine.provider import Progress
from reconciler.errors import RemoteError, SaxctlError
from reconciler.providers.google_errors import remote_call


@contextlib.contextmanager
def _call(method: str, target: str) -> Iterator[None]:
    """One storage API call: errors become saxctl's, named by method and object, with the server's message only."""
    with remote_call(method, target), clean_errors():
        yield


def _default_retry():
    from google.cloud.storage.retry import DEFAULT_RETRY

    # Re-sending the same bytes to the same name is harmless, so uploads retry 429/5xx like reads do.
    return DEFAULT_RETRY.with_timeout(300)


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

    with _call("storage.objects.list", f"gs://{bucket_name}/{prefix}/"):
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
        with _call("storage.objects.get", target):
            text = client.bucket(bucket_name).blob(f"{prefix}/{MANIFEST_NAME}").download_as_text(timeout=TIMEOUT)
        manifest = Manifest.from_json(text, target)
    return RemoteCheckpoint(url, crcs, manifest, generation)


def checkpoints_in(client, bucket_name: str) -> list[str]:
    """The gs:// URL of every checkpoint directory in the bucket that holds a saxctl manifest: one listing, of the
    manifests only where the server honours matchGlob (GCS does; the sandbox lists everything, filtered here)."""
    from google.api_core.exceptions import NotFound

    suffix = "/" + MANIFEST_NAME
    with _call("storage.objects.list", f"gs://{bucket_name}/**{suffix}"):
        try:
            names = [blob.name for blob in client.list_blobs(bucket_name, match_glob="**" + suffix,
                                                             fields="items(name),nextPageToken", timeout=TIMEOUT)]
        except NotFound:  # deleted since the plan read it
            return []
    return [f"gs://{bucket_name}/{name.removesuffix(suffix)}" for name in names if name.endswith(suffix)]


class _ByteCounter:
    """Bytes the server holds so far over all files, for the progress display."""

    def __init__(self, total: int, progress: Progress | None):
        self.total, self.done, self.progress = total, 0, progress
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        with self._lock:
            self.done += count
            if self.progress is not None:
                self.progress.advance(self.done, self.total)


@dataclass(frozen=True, slots=True)
class UploadResult:
    url: str
    uploaded: int
    skipped: int  # objects already there with the same crc32c
    bytes_uploaded: int  # sent by this run; a resumed object counts only what was sent again


def check_destination(client, url: str) -> None:
    """Fail now, before hours of conversion, if the bucket is not there (one listing of at most one object)."""
    from google.api_core.exceptions import NotFound

    bucket_name, prefix = parse_gs_url(url)
    with _call("storage.objects.list", f"gs://{bucket_name}/{prefix}/"):
        try:
            next(iter(client.list_blobs(bucket_name, prefix=prefix + "/", max_results=1, timeout=TIMEOUT)), None)
        except NotFound:
            raise RemoteError(
                f"storage.objects.list gs://{bucket_name}/{prefix}/: the bucket {bucket_name} does not exist",
                hint="Create it first (`saxctl apply` creates the spec's data bucket), or check the name.",
            ) from None


def upload(client, root: Path, url: str, workers: int = 8, progress: Progress | None = None) -> UploadResult:
    """Upload a committed local checkpoint: the manifest first, data in parallel, each verified by crc32c; markers
    last.

    The manifest names the owner, so objects a killed run left behind are recognised as saxctl's and completed by a
    re-run. Objects already in GCS with the manifest's crc32c are not sent again, and a large object cut off
    mid-way continues from where the server stopped (sessions saved beside the staging copy).
    """
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

    def target(relative: str) -> str:
        return f"gs://{bucket_name}/{prefix}/{relative}"

    def delete(relative: str) -> None:
        from google.api_core.exceptions import NotFound

        with _call("storage.objects.delete", target(relative)):
            try:
                bucket.blob(f"{prefix}/{relative}").delete(timeout=TIMEOUT, retry=_default_retry())
            except NotFound:  # a retried delete whose first attempt went through
                pass

    for marker in reversed(MARKERS):  # root marker first: GCS must never show half-replaced data as committed
        if marker in remote.crc32c_by_path:
            delete(marker)
    if not same_manifest:
        with _call("storage.objects.insert", target(MANIFEST_NAME)):
            bucket.blob(f"{prefix}/{MANIFEST_NAME}").upload_from_string(
                manifest_text, content_type="application/json", timeout=TIMEOUT, retry=_default_retry()
            )
        if remote.manifest is not None:  # what an earlier conversion of ours wrote and this one does not
            for relative in sorted(set(remote.manifest.files) - set(manifest.files)):
                if relative in remote.crc32c_by_path:
                    delete(relative)

    counter = _ByteCounter(sum(manifest.files[p]["size"] for p in pending), progress)
    sessions = SessionStore(root / SESSIONS_NAME, url)
    sent_bytes = [0] * len(pending)

    def send(number: int, relative: str) -> None:
        info = manifest.files[relative]
        with _call("storage.objects.insert", target(relative)):
            if info["size"] > CHUNK_BYTES:
                result = send_resumable(client, bucket_name, f"{prefix}/{relative}", root / relative, info["size"],
                                        info["crc32c"], sessions, relative, counter.add)
                sent_bytes[number] = result.bytes_sent
            else:
                _send_small(bucket.blob(f"{prefix}/{relative}"), root / relative, info, counter.add)
                sent_bytes[number] = info["size"]

    if pending:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="upload") as pool:
            for _ in pool.map(send, range(len(pending)), pending):
                pass
    for marker in MARKERS:
        with _call("storage.objects.insert", target(marker)):
            bucket.blob(f"{prefix}/{marker}").upload_from_string(
                f"Checkpoint commit was successful to {url}\n", timeout=TIMEOUT, retry=_default_retry()
            )
    return UploadResult(url, len(pending), len(manifest.files) - len(pending), sum(sent_bytes))


def _send_small(blob, file: Path, info: dict, on_sent) -> None:
    """One request (multipart upload), checked against the manifest's crc32c by GCS and by us."""
    with open(file, "rb") as handle:
        blob.upload_from_file(handle, size=info["size"], checksum="crc32c", crc32c_checksum_value=info["crc32c"],
                              timeout=TIMEOUT, retry=_default_retry())
    if blob.crc32c != info["crc32c"]:
        raise SaxctlError(f"gs://{blob.bucket.name}/{blob.name}: GCS reports crc32c {blob.crc32c}, "
                          f"the file has {info['crc32c']}")
    on_sent(info["size"])


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
            with _call("storage.objects.delete", f"gs://{bucket_name}/{prefix}/{relative}"):
                try:
                    bucket.blob(f"{prefix}/{relative}").delete(timeout=TIMEOUT)
                    deleted += 1
                except NotFound:
                    pass
    return deleted
