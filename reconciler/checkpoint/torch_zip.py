"""Read PyTorch zip-pickle shards (.bin) without torch: a restricted unpickler over memory-mapped storages."""

from __future__ import annotations

import mmap
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy (60 ms) is imported where arrays are made: every plan imports this module
    import numpy as np

from reconciler.errors import SaxctlError

# torch's storage class name → the dtype of its elements; bfloat16 comes from ml_dtypes (a tensorstore dependency).
_STORAGE_DTYPES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"


def numpy_dtype(name: str) -> np.dtype:
    import numpy as np

    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


@dataclass(frozen=True, slots=True)
class _StorageRef:
    key: str
    dtype: str


@dataclass(frozen=True, slots=True)
class TensorRecord:
    """Where one tensor's elements live in a shard: nothing is read until a view is asked for."""

    storage_key: str
    dtype: str
    offset: int  # in elements, from the start of the storage
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: _StorageRef, offset: int, size, stride, *_ignored) -> TensorRecord:
    return TensorRecord(storage.key, storage.dtype, int(offset), tuple(size), tuple(stride))


class _StorageType:
    """Stands for torch.<X>Storage in the pickle: only its element type is used."""

    def __init__(self, dtype: str):
        self.dtype = dtype


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals that tensor rebuilding needs; .bin files from the internet can run code otherwise."""

    def __init__(self, file, shard: Path):
        super().__init__(file)
        self._shard = shard

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise SaxctlError(
            f"{self._shard}: the pickle calls {module}.{name}, which is not tensor rebuilding; refusing to load it",
            hint="Only plain state_dict checkpoints are read; a pickle naming other globals could run code.",
        )

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise SaxctlError(f"{self._shard}: unexpected persistent id {pid!r} in the pickle")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise SaxctlError(f"{self._shard}: storage {key} has an unknown type {storage_type!r}")
        return _StorageRef(key, storage_type.dtype)


class TorchShard:
    """One pytorch_model-*.bin: tensor records from its pickle, element data mapped from the file on demand."""

    def __init__(self, path: Path):
        self.path = path
        try:
            with zipfile.ZipFile(path) as archive:
                members = {info.filename: info for info in archive.infolist()}
                pickle_name = next((name for name in members if name.endswith("/data.pkl")), None)
                if pickle_name is None:
                    raise SaxctlError(f"{path}: not a PyTorch zip checkpoint (no data.pkl inside)")
                prefix = pickle_name[: -len("data.pkl")]
                with archive.open(pickle_name) as pickled:
                    state = _RestrictedUnpickler(pickled, path).load()
                byteorder = archive.read(prefix + "byteorder").decode() if prefix + "byteorder" in members else "little"
        except (zipfile.BadZipFile, EOFError, OSError, pickle.UnpicklingError, struct.error, TypeError,
                ValueError) as error:
            raise SaxctlError(f"{path}: unreadable or truncated PyTorch checkpoint ({error})") from None
        if byteorder != "little":
            raise SaxctlError(f"{path}: big-endian checkpoints are not supported")
        if not isinstance(state, dict) or not all(isinstance(v, TensorRecord) for v in state.values()):
            raise SaxctlError(f"{path}: the pickle does not hold a flat state_dict of tensors")
        self.records: dict[str, TensorRecord] = dict(state)
        self._members = members
        self._prefix = prefix
        with open(path, "rb") as handle:  # the mapping outlives the file handle
            self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        for name in self.records:
            self._check_fits(name)

    def _storage_span(self, key: str) -> tuple[int, int]:
        """(file offset, size) of a stored (never compressed) storage member, from its local header."""
        info = self._members.get(f"{self._prefix}data/{key}")
        if info is None or info.compress_type != zipfile.ZIP_STORED:
            raise SaxctlError(f"{self.path}: storage {key} is missing or compressed")
        signature, name_length, extra_length = _LOCAL_HEADER.unpack_from(self._map, info.header_offset)
        if signature != _LOCAL_HEADER_SIGNATURE:
            raise SaxctlError(f"{self.path}: storage {key} has a corrupt zip header")
        start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        if start + info.file_size > len(self._map):
            raise SaxctlError(f"{self.path}: storage {key} runs past the end of the file (truncated?)")
        return start, info.file_size

    def _check_fits(self, name: str) -> None:
        """The storage holds every element the tensor's shape and strides reach (a truncated storage does not)."""
        record = self.records[name]
        _, size = self._storage_span(record.storage_key)
        elements = size // numpy_dtype(record.dtype).itemsize
        reach = record.offset + 1 + sum((n - 1) * s for n, s in zip(record.shape, record.stride))
        if all(record.shape) and reach > elements:
            raise SaxctlError(f"{self.path}: tensor {name} needs {reach} elements, "
                              f"its storage holds {elements} (truncated?)")

    def view(self, name: str) -> np.ndarray:
        """A read-only array over the mapped file: pages are read when touched, nothing is copied."""
        import numpy as np

        record = self.records[name]
        start, size = self._storage_span(record.storage_key)
        dtype = numpy_dtype(record.dtype)
        storage = np.frombuffer(self._map, dtype=dtype, count=size // dtype.itemsize, offset=start)
        strides = tuple(s * dtype.itemsize for s in record.stride)
        return np.lib.stride_tricks.as_strided(storage[record.offset :], record.shape, strides, writeable=False)

    @property
    def mapping(self) -> mmap.mmap:
        """The read-only mapping of the whole shard that every view is made from."""
        return self._map

    def span(self, name: str) -> tuple[int, int]:
        """The file bytes [start, stop) that hold this tensor's storage."""
        start, size = self._storage_span(self.records[name].storage_key)
        return start, start + size

    def release_range(self, start: int, stop: int) -> None:
        """Drop the mapped pages of file bytes [start, stop) from our resident set (they stay in the page cache)."""
        page_start = start - start % mmap.PAGESIZE
        if stop > page_start:
            self._map.madvise(mmap.MADV_DONTNEED, page_start, stop - page_start)

    def release(self, name: str, start_row: int, stop_row: int) -> None:
        """Drop these rows' pages from our resident set (they stay in the page cache): keeps RSS bounded."""
        import numpy as np

        record = self.records[name]
        start, size = self._storage_span(record.storage_key)
        itemsize = numpy_dtype(record.dtype).itemsize
        contiguous = record.stride == tuple(int(np.prod(record.shape[i + 1 :])) for i in range(len(record.shape)))
        if contiguous and record.shape:
            row_bytes = itemsize * int(np.prod(record.shape[1:], dtype=np.int64))
            start, size = start + itemsize * record.offset + start_row * row_bytes, (stop_row - start_row) * row_bytes
        self.release_range(start, start + size)
