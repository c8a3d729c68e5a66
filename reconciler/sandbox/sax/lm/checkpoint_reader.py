"""Read a checkpoint saxctl converted (reconciler/checkpoint's layout) through any file source: GCS or a directory.

paxml reads the same zarr v2 arrays through tensorstore; here each array is one uncompressed chunk in the order its
`.zarray` names, so its bytes are the array. Every shape is checked against the model's dimensions: Sax itself
would silently crop or zero-pad a wrong-shaped array (RECIPES §5), the sandbox says so instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np

from reconciler.checkpoint.layout import PAX_PREFIX
from reconciler.checkpoint.manifest import MANIFEST_NAME
from reconciler.checkpoint.zarr_store import chunk_name


class LoadError(Exception):
    """A load Sax would fail: str(error) is the reason the model server reports."""


class CheckpointReader(Protocol):
    def read(self, relative_path: str) -> bytes:
        """A file under the checkpoint root (Sax's checkpoint_path); FileNotFoundError when there is none."""
        ...


class DirectoryCheckpoint:
    """A checkpoint in a local directory."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def read(self, relative_path: str) -> bytes:
        return (self.root / relative_path).read_bytes()


def read_file(checkpoint: CheckpointReader, relative_path: str) -> bytes:
    try:
        return checkpoint.read(relative_path)
    except FileNotFoundError:
        raise LoadError(f"{relative_path} is missing from the checkpoint") from None
    except Exception as error:  # whatever the storage says is the reason the load failed
        raise LoadError(f"cannot read {relative_path} from the checkpoint: {error}") from None


def read_json(checkpoint: CheckpointReader, relative_path: str) -> dict:
    try:
        found = json.loads(read_file(checkpoint, relative_path))
    except ValueError as error:
        raise LoadError(f"{relative_path} is not valid JSON ({error})") from None
    if not isinstance(found, dict):
        raise LoadError(f"{relative_path} is not a JSON object")
    return found


def read_manifest(checkpoint: CheckpointReader) -> dict:
    try:
        return read_json(checkpoint, MANIFEST_NAME)
    except LoadError as error:
        raise LoadError(f"{error}: the sandbox model server serves checkpoints saxctl converted") from None


def read_array(checkpoint: CheckpointReader, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """state/mdl_vars.params.lm.<name> as float32, refused unless it is exactly `shape`."""
    directory = f"state/{PAX_PREFIX}{name}"
    zarray = read_json(checkpoint, f"{directory}/.zarray")
    found_shape = tuple(zarray.get("shape") or ())
    if found_shape != shape:
        raise LoadError(f"{PAX_PREFIX}{name} has shape {list(found_shape)}, the model needs {list(shape)}")
    layout = (zarray.get("dtype"), zarray.get("compressor"), zarray.get("filters"), zarray.get("chunks"))
    if layout != ("<f4", None, None, list(shape)) or zarray.get("order") not in ("C", "F"):
        raise LoadError(f"{PAX_PREFIX}{name} is not one uncompressed float32 chunk ({directory}/.zarray: "
                        f"dtype {layout[0]}, compressor {layout[1]}, chunks {layout[3]}); convert it again")
    chunk = read_file(checkpoint, f"{directory}/{chunk_name(shape)}")
    if len(chunk) != 4 * int(np.prod(shape, dtype=np.int64)):
        raise LoadError(f"{PAX_PREFIX}{name}: its chunk holds {len(chunk)} bytes, shape {list(shape)} needs "
                        f"{4 * int(np.prod(shape, dtype=np.int64))}")
    return np.frombuffer(chunk, dtype="<f4").reshape(shape, order=zarray["order"])


def read_shape(checkpoint: CheckpointReader, name: str) -> tuple[int, ...]:
    """The shape an array's .zarray declares (to learn the model's dimensions before reading anything big)."""
    shape = read_json(checkpoint, f"state/{PAX_PREFIX}{name}/.zarray").get("shape")
    if not isinstance(shape, list) or not all(isinstance(size, int) and size > 0 for size in shape):
        raise LoadError(f"state/{PAX_PREFIX}{name}/.zarray: shape {shape!r} is not a list of sizes")
    return tuple(shape)
