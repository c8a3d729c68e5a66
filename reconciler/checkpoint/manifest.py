"""The manifest beside the Pax arrays: what was converted from what, with sizes and checksums."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import SaxctlError

# Inside checkpoint_00000000/, not next to it: paxml lists the parent for checkpoint_<step> names and parses them.
MANIFEST_NAME = "saxctl-manifest.json"
# Bump when a checkpoint converted before must be converted again: what Sax would load from the same source changes,
# or the fingerprint that compares sources does. 2: sources fingerprinted by content (were names, sizes and times),
# arrays uncompressed (were zstd), so a version-1 checkpoint plans as a replacement that says why. Storing the
# transposed matrices in Fortran order (each array's zarr order is in the manifest; none given means C, as before)
# reads as the same values, so it kept version 2: a checkpoint converted before is not converted again.
CONVERTER_VERSION = "2"
MARKER_NAME = "commit_success.txt"
MARKERS = (f"metadata/{MARKER_NAME}", f"state/{MARKER_NAME}", MARKER_NAME)  # written in this order: root last
# The source's GPT-2 BPE files, carried into checkpoint_00000000/tokenizer/ (paxml reads only metadata/ and state/):
# the sandbox model server tokenizes with them. Listed in the manifest's files like every array's, so the upload and
# `checkpoint verify` cover them, and a checkpoint without them is not complete.
TOKENIZER_DIR = "tokenizer"
TOKENIZER_FILES = ("vocab.json", "merges.txt")


@dataclass(slots=True)
class Manifest:
    source_format: str  # "hf-gptj"
    source_fingerprint: str
    source_vocab_size: int
    vocab_size: int
    converter_version: str = CONVERTER_VERSION
    rotary_dim: int | None = None  # config.json's, which no array's shape tells (GPT-J 6B: 64); None before it was kept
    owner: str | None = None  # the spec (metadata.name) whose apply wrote it; None when converted by hand
    # Where the source was when converted (a digest of each file's size, times and inode): lets a re-run on the same
    # machine reuse finished arrays before the content hash, made as the conversion reads the source, is known.
    source_identity: str = ""
    arrays: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → shape, dtype, order, nbytes, checksum
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # path in the checkpoint → size, crc32c

    def has_tokenizer(self) -> bool:
        return all(f"{TOKENIZER_DIR}/{name}" in self.files for name in TOKENIZER_FILES)

    def same_target(self, other: Manifest) -> bool:
        """Converted the same way (the source aside)."""
        return (self.vocab_size, self.converter_version) == (other.vocab_size, other.converter_version)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> Manifest:
        try:
            data = json.loads(text)
            return cls(**data)
        except (ValueError, TypeError) as error:
            raise SaxctlError(f"{where}: not a saxctl checkpoint manifest ({error})") from None


def load_manifest(root: Path) -> Manifest | None:
    path = root / MANIFEST_NAME
    return Manifest.from_json(path.read_text(), str(path)) if path.is_file() else None


def save_manifest(root: Path, manifest: Manifest) -> None:
    """Atomically (write then rename): a kill never leaves a manifest that lists unfinished work."""
    path = root / MANIFEST_NAME
    partial = path.with_suffix(".json.partial")
    partial.write_text(manifest.to_json())
    os.replace(partial, path)


def is_committed(root: Path) -> bool:
    """Every commit marker is written: the conversion (or download) of the checkpoint under root finished."""
    return all((root / marker).is_file() for marker in MARKERS)
