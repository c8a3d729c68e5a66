"""Convert to a local directory, or convert into a local staging copy and upload it when the destination is gs://."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from reconciler.checkpoint import convert
from reconciler.checkpoint.gcs_checkpoint import UploadResult, check_destination, parse_gs_url, upload
from reconciler.checkpoint.manifest import MANIFEST_NAME, MARKERS, load_manifest
from reconciler.checkpoint.resumable import SESSIONS_NAME
from reconciler.engine.provider import Progress


@dataclass(frozen=True, slots=True)
class Pipeline:
    """What will be done, checked before anything is: the source read, the destination reachable, the disk roomy."""

    conversion: convert.Conversion
    destination: str  # a local directory or a gs:// URL
    storage_client: object | None
    staging_parent_is_ours: bool = False  # the staging copy sits in a directory made for this destination

    @property
    def staging(self) -> Path | None:
        """The local copy a gs:// destination is converted into, while it exists."""
        return self.conversion.root if self.storage_client is not None else None


@dataclass(frozen=True, slots=True)
class PipelineResult:
    converted: convert.ConvertResult
    uploaded: UploadResult | None
    staging_removed: bool


def staging_dir(url: str, base: Path | None = None) -> Path:
    """Where a gs:// destination is staged locally: stable per URL, so a re-run finds the finished arrays.

    Staging (rather than streaming tensorstore straight to GCS) keeps a kill -9 cheap on both sides: the local
    manifest says which arrays are done, and the upload skips objects whose crc32c already matches.
    """
    if base is None:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "saxctl" / "staging"
    bucket, prefix = parse_gs_url(url)
    key = hashlib.sha256(url.encode()).hexdigest()[:12]
    return base / f"{bucket}-{key}" / Path(prefix).name


def prepare(source: Path, destination: str, vocab_size: int, *, storage_client=None, staging: Path | None = None,
            staging_base: Path | None = None) -> Pipeline:
    """Every check that can fail before any work: the source, the destination bucket, the free disk space.

    staging: the exact local copy; else one directory per destination under staging_base (~/.cache/saxctl/staging).
    """
    if not destination.startswith("gs://"):
        return Pipeline(convert.prepare(source, Path(destination), vocab_size), destination, None)
    parse_gs_url(destination)
    conversion = convert.prepare(source, staging or staging_dir(destination, staging_base), vocab_size)
    check_destination(storage_client, destination)
    return Pipeline(conversion, destination, storage_client, staging_parent_is_ours=staging is None)


def run(pipeline: Pipeline, progress: Progress | None = None, *, owner: str | None = None, workers: int = 8,
        keep_staging: bool = False) -> PipelineResult:
    progress = progress or convert.SilentProgress()
    converted = convert.run(pipeline.conversion, progress, owner)
    if pipeline.storage_client is None:
        return PipelineResult(converted, None, False)
    progress.update("uploading")
    uploaded = upload(pipeline.storage_client, converted.root, pipeline.destination, workers=workers,
                      progress=progress)
    # upload() checked every object's crc32c as GCS reported it and wrote the markers last: the copy is verified.
    if keep_staging:
        return PipelineResult(converted, uploaded, False)
    remove_staging(converted.root)
    if pipeline.staging_parent_is_ours:
        _remove_if_empty(converted.root.parent)
    return PipelineResult(converted, uploaded, True)


def remove_staging(root: Path) -> None:
    """Delete what the conversion wrote into root (the manifest says what), then the directories left empty.

    Never a recursive delete: --staging may name a directory that holds other things too.
    """
    manifest = load_manifest(root)
    if manifest is None:
        return
    for relative in [*manifest.files, *MARKERS, SESSIONS_NAME, MANIFEST_NAME]:
        (root / relative).unlink(missing_ok=True)
    directories = sorted({(root / relative).parent for relative in manifest.files}, key=lambda p: -len(p.parts))
    for directory in [*directories, root / "state", root / "metadata", root]:
        _remove_if_empty(directory)


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:  # not empty (something else lives there) or already gone
        pass
