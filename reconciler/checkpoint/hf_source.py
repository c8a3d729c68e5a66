"""Open a Hugging Face GPT-J directory (.bin shards or safetensors) as named, lazily read tensors."""

from __future__ import annotations

import functools
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # numpy (60 ms) is imported where arrays are made: every plan imports this module
    import numpy as np

from reconciler.checkpoint.gptj_config import GptjDims, load_gptj_dims
from reconciler.checkpoint.manifest import TOKENIZER_FILES
from reconciler.checkpoint.torch_zip import TorchShard
from reconciler.engine.provider import Progress
from reconciler.errors import SaxctlError

# Ordered by preference: safetensors cannot run code, so it wins when a directory has both.
_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
_SINGLE_FILES = ("model.safetensors", "pytorch_model.bin")


# A transposing read turns the source in tiles of 16 rows: each tile then writes whole 64-byte cache lines of its
# output rows. Measured here on a [16384, 4096] fp32 matrix, 1024 columns at a time, on one core: 16-row tiles
# 2.8 GB/s, 32-row 1.3 GB/s, 128 x 128 1.0 GB/s, numpy copying the transposed view in one call 0.19 GB/s. The
# transposes are most of the conversion's CPU time.
TILE_ROWS = 16
TILE_COLUMNS = 1024
READ_BYTES = 4 << 20  # source read per call (a view of the mapping, or one safetensors read), then cut into tiles


@dataclass(frozen=True, slots=True)
class SourceTensor:
    """One tensor of the source: where it lives and how to read parts of it as float32.

    Reads copy as little as they can: measured on 2 busy cores, each extra pass over 24 GB costs more time than
    the disk does. A float32 .bin shard gives rows as views of the mapped file.
    """

    name: str
    file: Path
    shape: tuple[int, ...]
    _reader: "_ShardReader"

    def rows(self, start: int, stop: int) -> np.ndarray:
        """self[start:stop] as float32, possibly a view of the mapped file: call release() once it is used."""
        import numpy as np

        return np.asarray(self._reader.read(self.name, (slice(start, stop),)), dtype=np.float32)

    def release(self, start: int, stop: int) -> None:
        """Drop these rows' pages from our resident set (they stay in the page cache)."""
        self._reader.release(self.name, start, stop)

    def span(self) -> tuple[int, int]:
        """The bytes [start, stop) of its file that hold this tensor."""
        return self._reader.span(self.name)

    def columns_transposed(self, columns: slice, out: np.ndarray | None = None) -> np.ndarray:
        """self[:, columns].T as a C-order float32 array, turned tile by tile. `out`: a flat float32 buffer to fill
        instead of a new array (a fresh 64 MB array costs the kernel a pass of zeroed pages).

        One copy, transposing as it gathers. The source's pages stay mapped across column blocks (each is faulted in
        once, not once per block): release() the whole tensor after its last block.
        """
        import numpy as np

        count = self.shape[0]
        shape = (columns.stop - columns.start, count)
        if out is None:
            transposed = np.empty(shape, dtype=np.float32)
        else:
            transposed = out[: shape[0] * shape[1]].reshape(shape)
        # The two halves of the source's rows at once: numpy lets go of the GIL while it copies a tile, so the
        # second core turns the other half.
        middle = count // 2 - count // 2 % TILE_ROWS
        other = _transposer().submit(self._transpose_into, columns, slice(middle, count), transposed)
        try:
            self._transpose_into(columns, slice(0, middle), transposed)
        finally:
            other.result()
        return transposed

    def _transpose_into(self, columns: slice, rows: slice, transposed: np.ndarray) -> None:
        """transposed[:, rows] = self[rows, columns].T, tile by tile."""
        width = columns.stop - columns.start
        read_rows = max(TILE_ROWS, READ_BYTES // (4 * max(width, 1)) // TILE_ROWS * TILE_ROWS)
        for start in range(rows.start, rows.stop, read_rows):
            window = self._reader.read(self.name, (slice(start, min(rows.stop, start + read_rows)), columns))
            for top in range(0, window.shape[0], TILE_ROWS):
                stripe = slice(start + top, start + min(window.shape[0], top + TILE_ROWS))
                for left in range(0, width, TILE_COLUMNS):
                    tile = window[top : top + TILE_ROWS, left : left + TILE_COLUMNS]
                    transposed[left : left + tile.shape[1], stripe] = tile.T


@functools.cache
def _transposer() -> ThreadPoolExecutor:
    """The thread that turns the second half of each transposed block, for the life of the process."""
    return ThreadPoolExecutor(1, "transpose")


class _ShardReader(Protocol):
    def read(self, name: str, index: tuple[slice, ...]) -> np.ndarray: ...

    def release(self, name: str, start_row: int, stop_row: int) -> None: ...

    def span(self, name: str) -> tuple[int, int]: ...


class _TorchReader:
    def __init__(self, shard: TorchShard):
        self.shard = shard
        self.span = shard.span

    def read(self, name, index):
        return self.shard.view(name)[index]  # a view of the mapping, in the stored dtype

    def release(self, name, start_row, stop_row):
        self.shard.release(name, start_row, stop_row)


class _SafetensorsReader:
    """Opens the file per read: safetensors maps it, and closing drops the mapping (and its pages from our RSS)."""

    def __init__(self, path: Path):
        self.path = path

    def span(self, name):
        """From the file's header: data_offsets are relative to its end."""
        length, header = _safetensors_header(self.path)
        begin, end = header[name]["data_offsets"]
        return 8 + length + begin, 8 + length + end

    def read(self, name, index):
        import numpy as np

        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(self.path, framework="np") as handle:
                return np.array(handle.get_slice(name)[index], dtype=np.float32)
        except (SafetensorError, OSError, ValueError, TypeError) as error:
            raise SaxctlError(f"{self.path}: cannot read tensor {name} ({error})") from None

    def release(self, name, start_row, stop_row):
        pass  # the mapping closed with the file


def _safetensors_header(path: Path) -> tuple[int, dict]:
    """8 bytes of header length, then the JSON header: each tensor's dtype, shape and data_offsets."""
    with open(path, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        return length, json.loads(handle.read(length))


def _safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="np") as handle:
            return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise SaxctlError(f"{path}: unreadable or truncated safetensors file ({error})") from None


@dataclass(frozen=True, slots=True)
class HfSource:
    directory: Path
    dims: GptjDims
    tensors: dict[str, SourceTensor]
    files: tuple[Path, ...]  # config, index, shards and tokenizer files: what the fingerprint covers
    torch_shards: dict[Path, TorchShard]  # the .bin shards, mapped: a hash can read through the same pages


def source_files(directory: Path) -> tuple[Path, ...]:
    """The files a conversion reads: config.json, the index (if any), every shard it names and the tokenizer's."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SaxctlError(f"{directory}: not a directory (expected a Hugging Face GPT-J model directory)")
    config = directory / "config.json"
    if not config.is_file():
        raise SaxctlError(f"{config}: missing; a Hugging Face model directory has a config.json")
    weight_map, index_file = _weight_map(directory)
    shards = []
    for shard_name in sorted(set(weight_map.values())):
        shard_path = directory / shard_name
        if not shard_path.is_file():
            first = next(name for name, shard in weight_map.items() if shard == shard_name)
            raise SaxctlError(
                f"{shard_path}: missing; {index_file.name if index_file else 'the index'} lists it for tensor {first}"
            )
        shards.append(shard_path)
    return (config, *([index_file] if index_file else []), *shards, *tokenizer_files(directory))


def tokenizer_files(directory: Path) -> tuple[Path, ...]:
    """vocab.json and merges.txt, GPT-2's BPE as HF GPT-J directories ship it: the converter carries them along."""
    found = tuple(directory / name for name in TOKENIZER_FILES)
    for path in found:
        if not path.is_file():
            raise SaxctlError(f"{path}: missing; the model server tokenizes with the model directory's "
                              f"{' and '.join(TOKENIZER_FILES)} (GPT-2's BPE)",
                              hint="Copy them from the model's Hugging Face repository (EleutherAI/gpt-j-6b ships "
                                   "both) into the model directory.")
    return found


def source_fingerprint(directory: Path, progress: Progress | None = None) -> str:
    """The identity of a source by content: every file it reads, by name, size and content hash.

    Each file's hash is cached by its identity (size, mtime, ctime, inode), so only new or rewritten files are
    read; `touch` costs one re-read of that file and leaves the fingerprint as it was.
    """
    from reconciler.checkpoint.source_hashes import cached_hash, file_hash

    files = source_files(directory)
    unhashed = [path for path in files if cached_hash(path) is None]
    total, done = sum(path.stat().st_size for path in unhashed), 0
    if progress is not None and unhashed:
        progress.update("hashing the source")
        progress.advance(0, total)

    def read(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress.advance(done, total)

    return combine_hashes({path: file_hash(path, read) for path in files})


def combine_hashes(hashes: dict[Path, str]) -> str:
    """The source fingerprint from each file's content hash, with its name and size."""
    import xxhash

    from reconciler.checkpoint.source_hashes import HASH_PREFIX

    digest = xxhash.xxh3_128()
    for path, found in hashes.items():
        digest.update(f"{path.name}\0{path.stat().st_size}\0{found}\n".encode())
    return HASH_PREFIX + digest.hexdigest()


def open_source(directory: Path) -> HfSource:
    """Read the config, the index and every shard's tensor table (no weights yet); fail before anything is written."""
    directory = Path(directory)
    files = source_files(directory)
    dims = load_gptj_dims(directory / "config.json")
    weight_map, index_file = _weight_map(directory)
    tensors: dict[str, SourceTensor] = {}
    torch_shards: dict[Path, TorchShard] = {}
    for shard_path in files:
        if shard_path.suffix == ".safetensors":
            reader: _ShardReader = _SafetensorsReader(shard_path)
            shapes = _safetensors_shapes(shard_path)
        elif shard_path.suffix == ".bin":
            shard = TorchShard(shard_path)
            reader = _TorchReader(shard)
            torch_shards[shard_path] = shard
            shapes = {name: record.shape for name, record in shard.records.items()}
        else:
            continue
        for name, shape in shapes.items():
            if weight_map.get(name, shard_path.name) == shard_path.name:
                tensors[name] = SourceTensor(name, shard_path, shape, reader)
    for name, shard_name in weight_map.items():
        if name not in tensors:
            raise SaxctlError(f"{directory / shard_name}: tensor {name} is listed in {index_file.name} but absent")
    return HfSource(directory, dims, tensors, files, torch_shards)


def _weight_map(directory: Path) -> tuple[dict[str, str], Path | None]:
    """tensor name → shard file name, from the index json, or from the single unsharded file."""
    for index_name in _INDEXES:
        index_path = directory / index_name
        if index_path.is_file():
            try:
                weight_map = json.loads(index_path.read_text())["weight_map"]
            except (ValueError, KeyError, TypeError) as error:
                raise SaxctlError(f"{index_path}: not a valid index (no weight_map: {error})") from None
            if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
                raise SaxctlError(f"{index_path}: weight_map must map tensor names to file names")
            for shard_name in weight_map.values():
                if Path(shard_name).name != shard_name:
                    raise SaxctlError(f"{index_path}: shard {shard_name!r} is not a file name in the model directory")
            return weight_map, index_path
    for single_name in _SINGLE_FILES:
        if (directory / single_name).is_file():
            return _single_file_map(directory / single_name), None
    raise SaxctlError(
        f"{directory}: no weights found (looked for {', '.join(_INDEXES + _SINGLE_FILES)})"
    )


def _single_file_map(path: Path) -> dict[str, str]:
    if path.suffix == ".safetensors":
        # Names only, from the header: a plan fingerprints the source without safetensors (and numpy); the
        # conversion opens the file with safetensors, which checks it whole.
        try:
            names = [name for name in _safetensors_header(path)[1] if name != "__metadata__"]
        except (OSError, ValueError, TypeError) as error:
            raise SaxctlError(f"{path}: unreadable or truncated safetensors file ({error})") from None
    else:
        names = TorchShard(path).records
    return {name: path.name for name in names}
