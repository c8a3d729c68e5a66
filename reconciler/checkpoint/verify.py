"""Check a converted checkpoint, local or in GCS, against its manifest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.checkpoint import zarr_store
from reconciler.checkpoint.gcs_checkpoint import read_remote
from reconciler.checkpoint.manifest import TOKENIZER_DIR, TOKENIZER_FILES, Manifest, is_committed, load_manifest
from reconciler.errors import SaxctlError


@dataclass(frozen=True, slots=True)
class VerifyResult:
    location: str
    arrays: int
    files: int
    source_fingerprint: str


def verify_local(root: Path) -> VerifyResult:
    """Re-read every array (shape, dtype, checksum) and every file's crc32c: what Sax would load, checked."""
    root = Path(root)
    manifest = load_manifest(root)
    if manifest is None:
        raise SaxctlError(f"{root}: no saxctl manifest; not a checkpoint saxctl converted")
    if not is_committed(root):
        raise SaxctlError(f"{root}: commit markers missing; the conversion did not finish")
    _check_tokenizer(manifest, str(root))
    for name, info in manifest.arrays.items():
        zarr_store.verify_array(root / "state" / name, tuple(info["shape"]), info["checksum"].removeprefix("crc32c:"),
                                info.get("order", "C"))  # manifests from before orders were recorded: all C
    for relative, info in manifest.files.items():
        path = root / relative
        if not path.is_file() or zarr_store.file_crc32c(path) != info["crc32c"]:
            raise SaxctlError(f"{path}: missing or changed since conversion (crc32c differs from the manifest)")
    return VerifyResult(str(root), len(manifest.arrays), len(manifest.files), manifest.source_fingerprint)


def verify_remote(client, url: str) -> VerifyResult:
    """Every object the manifest lists is in GCS with its crc32c, and the markers are there."""
    remote = read_remote(client, url)
    if remote.manifest is None:
        raise SaxctlError(f"{url}: no saxctl manifest; not a checkpoint saxctl uploaded")
    if not remote.committed:
        raise SaxctlError(f"{url}: commit markers missing; the upload did not finish")
    _check_tokenizer(remote.manifest, url)
    different = remote.missing_or_different()
    if different:
        raise SaxctlError(f"{url}: {len(different)} objects missing or with another crc32c, e.g. {different[0]}")
    manifest = remote.manifest
    return VerifyResult(url, len(manifest.arrays), len(manifest.files), manifest.source_fingerprint)


def _check_tokenizer(manifest: Manifest, location: str) -> None:
    if not manifest.has_tokenizer():
        raise SaxctlError(f"{location}: no {TOKENIZER_DIR}/ ({', '.join(TOKENIZER_FILES)}): converted by a saxctl "
                          "that did not carry the tokenizer; convert it again")
