"""Convert to a local directory, or convert into a local staging copy and upload it when the destination is gs://."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from reconciler.checkpoint.convert import ConvertResult, SilentProgress, convert
from reconciler.checkpoint.gcs_checkpoint import UploadResult, parse_gs_url, upload
from reconciler.engine.provider import Progress


@dataclass(frozen=True, slots=True)
class PipelineResult:
    converted: ConvertResult
    uploaded: UploadResult | None


def staging_dir(url: str) -> Path:
    """Where a gs:// destination is staged locally: stable per URL, so a re-run finds the finished arrays.

    Staging (rather than streaming tensorstore straight to GCS) keeps a kill -9 cheap on both sides: the local
    manifest says which arrays are done, and the upload skips objects whose crc32c already matches.
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    bucket, prefix = parse_gs_url(url)
    key = hashlib.sha256(url.encode()).hexdigest()[:12]
    return cache / "saxctl" / "staging" / f"{bucket}-{key}" / Path(prefix).name


def convert_to(
    source: Path,
    destination: str,
    vocab_size: int,
    *,
    storage_client=None,
    workers: int = 8,
    staging: Path | None = None,
    convert_progress: Progress | None = None,
    upload_progress: Progress | None = None,
    owner: str | None = None,
) -> PipelineResult:
    if not destination.startswith("gs://"):
        converted = convert(source, Path(destination), vocab_size, convert_progress or SilentProgress(), owner)
        return PipelineResult(converted, None)
    parse_gs_url(destination)  # a malformed URL fails before hours of conversion
    local_root = staging or staging_dir(destination)
    converted = convert(source, local_root, vocab_size, convert_progress or SilentProgress(), owner)
    uploaded = upload(storage_client, local_root, destination, workers=workers, progress=upload_progress)
    return PipelineResult(converted, uploaded)

