"""Write PyTorch zip-pickle shards without torch, for the benchmark's synthetic GPT-J and the tests' damaged copies."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

_STORAGE_TYPES = {"float32": "FloatStorage", "float16": "HalfStorage", "bfloat16": "BFloat16Storage"}


def _unicode(text: str) -> bytes:
    encoded = text.encode()
    return b"X" + struct.pack("<I", len(encoded)) + encoded


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _tuple(values: Sequence[int]) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"


def state_dict_pickle(tensors: Sequence[tuple[str, tuple[int, ...], str]]) -> bytes:
    """The protocol-2 pickle torch.save writes for a flat state_dict: {name: _rebuild_tensor_v2(storage, ...)}.

    Each tensor gets its own storage, keyed by its position, as torch.save does for separately allocated tensors.
    """
    out = [b"\x80\x02}("]
    for key, (name, shape, dtype) in enumerate(tensors):
        numel = int(np.prod(shape, dtype=np.int64))
        strides = [int(np.prod(shape[i + 1 :], dtype=np.int64)) for i in range(len(shape))]
        out += [
            _unicode(name),
            b"ctorch._utils\n_rebuild_tensor_v2\n(",
            b"(" + _unicode("storage") + f"ctorch\n{_STORAGE_TYPES[dtype]}\n".encode(),
            _unicode(str(key)) + _unicode("cpu") + _int(numel) + b"tQ",
            _int(0) + _tuple(shape) + _tuple(strides),
            b"\x89ccollections\nOrderedDict\n)R",
            b"tR",
        ]
    out.append(b"u.")
    return b"".join(out)


def write_shard(
    path: Path,
    tensors: Sequence[tuple[str, tuple[int, ...], str, Iterable[bytes]]],
    pickle_bytes: bytes | None = None,
) -> None:
    """tensors: (name, shape, dtype, chunks of the C-order bytes); chunks are streamed, never held together."""
    prefix = path.name.removesuffix(".bin")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        header = [(name, shape, dtype) for name, shape, dtype, _ in tensors]
        archive.writestr(f"{prefix}/data.pkl", pickle_bytes if pickle_bytes is not None else state_dict_pickle(header))
        archive.writestr(f"{prefix}/byteorder", "little")
        for key, (_, _, _, chunks) in enumerate(tensors):
            with archive.open(f"{prefix}/data/{key}", "w", force_zip64=True) as member:
                for chunk in chunks:
                    member.write(chunk)
        archive.writestr(f"{prefix}/version", "3\n")


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A shard holding these float32 arrays."""
    tensors = [(name, tuple(a.shape), "float32", [np.ascontiguousarray(a, np.float32).tobytes()])
               for name, a in arrays.items()]
    write_shard(path, tensors)
