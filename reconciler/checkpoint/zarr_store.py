"""Write and re-read the zarr v2 arrays paxml restores: one uncompressed chunk per array, streamed to disk.

Uncompressed because fp32 weights barely compress (bench/results/checkpoint_codecs.md): zstd -1 keeps 92% of the
bytes at half a plain write's speed, and the one codec that pays (blosc lz4 with bit shuffle, 88%) needs tensorstore
to assemble each array in memory. Without a codec the chunk file is the array's bytes in its zarr "order" (C, or F
for an array stored as the transpose of its source: layout.TRANSPOSE), so it is written
block by block as the blocks are made (no array-sized buffer), and its crc32c is both the array's checksum and the
object's crc32c in GCS. tensorstore writes the .zarray metadata, so the metadata is exactly what tensorstore (and
so paxml) reads.
"""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import google_crc32c

if TYPE_CHECKING:  # numpy (60 ms) is imported where arrays are made: every plan imports this module
    import numpy as np

from reconciler.checkpoint.filebytes import mapped_blocks
from reconciler.errors import SaxctlError

METADATA_VERSION = 1.1  # paxml reads checkpoint_*/metadata/metadata; without it, it assumes version 0 and fails
COMPRESSOR = None  # zarr's "compressor": see the module docstring
WRITE_PIECE_BYTES = 1 << 20


def chunk_name(shape: tuple[int, ...]) -> str:
    """The key of the single chunk: "0.0" for a matrix, "0" for a vector or a scalar."""
    return ".".join(["0"] * max(len(shape), 1))


def gcs_crc32c(value: int) -> str:
    """A crc32c as GCS reports it: base64 of the big-endian 32-bit value."""
    return base64.b64encode(value.to_bytes(4, "big")).decode()


def _spec(path: Path, shape: tuple[int, ...] | None, dtype: str, order: str = "C") -> dict:
    spec = {
        "driver": "zarr",
        "kvstore": {"driver": "file", "path": str(path)},
        # No fsync per file (tensorstore's default): on ext4 each one waits for every chunk written before it,
        # which made the conversion wait on the disk 2.5x longer than its work took. cp does not sync either.
        "context": {"cache_pool": {"total_bytes_limit": 0}, "file_io_sync": False},
    }
    if shape is not None:
        spec |= {
            "metadata": {
                "shape": list(shape),
                "chunks": list(shape) if shape else [],  # one chunk, as paxml's GDA checkpoints of one host
                "dtype": dtype,
                "compressor": COMPRESSOR,
                "fill_value": None,
                "order": order,
            },
            "create": True,
            "delete_existing": True,
        }
    return spec


def _flat_offset(index: tuple, shape: tuple[int, ...]) -> int:
    """Elements before index's first element in C order (index: ints and slices over leading dimensions)."""
    import numpy as np

    offset = 0
    for dim, part in enumerate(index):
        start = (part.start or 0) if isinstance(part, slice) else part
        offset += start * int(np.prod(shape[dim + 1 :], dtype=np.int64))
    return offset


def write_array(path: Path, shape: tuple[int, ...], blocks: Iterable[tuple[tuple, np.ndarray]],
                order: str = "C") -> str:
    """Write blocks as one float32 array; return the crc32c of its bytes.

    blocks: in the chunk's storage order, covering it once, each indexed into the stored shape (the array's shape,
    reversed for order "F").
    """
    import numpy as np

    import tensorstore as ts

    stored = stored_shape(shape, order)
    try:
        ts.open(_spec(path, shape, "<f4", order)).result()  # the .zarray, and any old chunk deleted
    except ValueError as error:
        raise SaxctlError(f"{path}: tensorstore could not create the array ({error})") from None
    expected = int(np.prod(shape, dtype=np.int64))
    written, crc = 0, 0
    # Each block is checksummed and written in a thread (write() releases the GIL) while the next one is made; both
    # go a piece at a time, so that write() copies a piece the checksum has just brought into the CPU cache. blocks()
    # fills two buffers in turn, and a block's write is awaited before the block after the next is asked for, so no
    # buffer is refilled in flight.
    with open(path / chunk_name(shape), "wb") as chunk, ThreadPoolExecutor(1, "chunk-writer") as writer:
        in_flight = None
        for index, values in blocks:
            values = np.ascontiguousarray(values, dtype=np.float32)
            if _flat_offset(index, stored) != written:  # a layout bug would silently scramble the array
                raise SaxctlError(f"{path}: block {index} is out of storage order (at element {written})")
            if in_flight is not None:
                crc = in_flight.result()
            in_flight = writer.submit(_checksum_and_write, chunk, values.reshape(-1), crc)
            written += values.size
        if in_flight is not None:
            crc = in_flight.result()
    if written != expected:
        raise SaxctlError(f"{path}: wrote {written} elements, the shape {list(shape)} has {expected}")
    return f"{crc:08x}"


def _checksum_and_write(chunk, values: np.ndarray, crc: int) -> int:
    """crc32c-extend and write() flat float32 values 1 MB at a time; return the crc so far. Measured here: 1 MB
    writes ran at 2.2 GB/s where 64 MB ones ran at 0.7 GB/s."""
    step = WRITE_PIECE_BYTES // values.itemsize
    for start in range(0, values.size, step):
        piece = values[start : start + step]
        crc = google_crc32c.extend(crc, piece)
        chunk.write(piece)
    return crc


def stored_shape(shape: tuple[int, ...], order: str) -> tuple[int, ...]:
    """The shape whose C order an array's chunk bytes follow."""
    return shape[::-1] if order == "F" else shape


def check_layout(path: Path, shape: tuple[int, ...], order: str = "C") -> Path:
    """What tensorstore (and so paxml) will make of the array: shape, dtype, one uncompressed chunk in `order` of the
    right size. paxml would silently pad, crop or zero an array that differs. Returns the chunk file.

    The conversion checks this much of what it wrote and no more: its bytes were checksummed as they were written,
    and the upload compares that checksum with the crc32c GCS computes of what it received (`checkpoint verify`
    re-reads a local copy).
    """
    import numpy as np

    import tensorstore as ts

    try:
        store = ts.open(_spec(path, None, "<f4")).result()
    except ValueError as error:
        raise SaxctlError(f"{path}: cannot read back the array ({error})") from None
    found_dtype = store.dtype.numpy_dtype
    if tuple(store.shape) != shape or found_dtype != np.float32:
        raise SaxctlError(f"{path}: wrote shape {list(shape)} float32, read back {list(store.shape)} {found_dtype}")
    metadata = json.loads((path / ".zarray").read_text())
    layout = (metadata.get("compressor"), metadata.get("filters"), metadata.get("order"), metadata.get("chunks"))
    if layout != (COMPRESSOR, None, order, list(shape)):
        raise SaxctlError(f"{path}: .zarray is not one uncompressed {order}-order chunk ({layout})")
    chunk = path / chunk_name(shape)
    if not chunk.is_file():  # a missing chunk reads as the fill value; with fill_value null that is not what we wrote
        raise SaxctlError(f"{path}: chunk file {chunk.name} is missing")
    size, needed = chunk.stat().st_size, 4 * int(np.prod(shape, dtype=np.int64))
    if size != needed:
        raise SaxctlError(f"{path}: chunk file {chunk.name} holds {size} bytes, the shape {list(shape)} needs {needed}")
    return chunk


def verify_array(path: Path, shape: tuple[int, ...], expected_checksum: str, order: str = "C") -> None:
    """check_layout, and the chunk's bytes re-read against the checksum they were written with."""
    crc = _file_crc(check_layout(path, shape, order))
    if f"{crc:08x}" != expected_checksum:
        raise SaxctlError(f"{path}: read back checksum {crc:08x}, wrote {expected_checksum}")


def write_step(path: Path, step: int = 0) -> None:
    """state/step: a 0-d int32 (paxml refuses shape (1,))."""
    import numpy as np

    import tensorstore as ts

    store = ts.open(_spec(path, (), "<i4")).result()
    store.write(np.array(step, dtype=np.int32)).result()
    read_back = store.read().result()
    if read_back.shape != () or int(read_back) != step:
        raise SaxctlError(f"{path}: step read back as {read_back!r}")


def write_metadata(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": METADATA_VERSION}))


def _file_crc(path: Path) -> int:
    import numpy as np

    crc = 0
    for block in mapped_blocks(path):
        crc = google_crc32c.extend(crc, np.frombuffer(block, np.uint8))
    return crc


def file_crc32c(path: Path) -> str:
    """The file's crc32c as GCS reports it."""
    return gcs_crc32c(_file_crc(path))
