"""Convert a HF GPT-J directory into a Pax checkpoint directory, tensor by tensor, markers last; re-runs resume."""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from reconciler.checkpoint import layout, zarr_store
from reconciler.checkpoint.hf_source import HfSource, combine_hashes, open_source, source_fingerprint
from reconciler.checkpoint.manifest import (MARKERS, TOKENIZER_DIR, TOKENIZER_FILES, Manifest, load_manifest,
                                           save_manifest)
from reconciler.checkpoint.source_hashes import FileHasher, FileIdentity, cached_hash
from reconciler.engine.provider import Progress
from reconciler.errors import SaxctlError

log = logging.getLogger(__name__)

SOURCE_FORMAT = "hf-gptj"
DEFAULT_VOCAB_SIZE = 50401  # what saxml.server.pax.lm.params.gptj.GPTJ builds
SPACE_MARGIN_BYTES = 256 << 20  # metadata, the manifest, and what the file system keeps for itself


@dataclass(frozen=True, slots=True)
class ConvertResult:
    root: Path
    manifest: Manifest
    written: int  # arrays converted in this run
    skipped: int  # arrays a previous run had finished and verified
    notes: tuple[str, ...]  # what a person should know, e.g. the vocabulary padding


class SilentProgress:
    """For callers that show no progress."""

    def update(self, message: str) -> None:
        pass

    def advance(self, done: int, total: int | None = None, unit: str = "B") -> None:
        pass


@dataclass(frozen=True, slots=True)
class Conversion:
    """A checked source and target, before anything is written: what `prepare` found, for `run` to carry out."""

    source: HfSource
    root: Path
    vocab_size: int
    arrays: tuple[layout.PaxArray, ...]
    notes: tuple[str, ...]

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in self.arrays)


def padding_note(source_vocab_size: int, vocab_size: int) -> str | None:
    if vocab_size <= source_vocab_size:
        return None
    return (f"vocabulary padded from {source_vocab_size} to {vocab_size} rows with zeros "
            f"(embedding rows, softmax columns and bias): the target params expect {vocab_size}")


def prepare(source_dir: Path, root: Path, vocab_size: int = DEFAULT_VOCAB_SIZE) -> Conversion:
    """Every input check, and the free-space check, with nothing written and nothing hashed yet."""
    source = open_source(Path(source_dir))
    layout.check_source(source.tensors, source.dims, vocab_size, str(source.directory / "config.json"))
    arrays = tuple(layout.pax_arrays(source.dims, vocab_size))
    note = padding_note(source.dims.vocab_size, vocab_size)
    conversion = Conversion(source, Path(root), vocab_size, arrays, (note,) if note else ())
    check_free_space(conversion.root, conversion.nbytes)
    return conversion


def check_free_space(root: Path, nbytes: int) -> None:
    """Refuse to start what would fill the disk: the output's size, less what an earlier run already wrote there."""
    existing = sum(p.stat().st_size for p in (root / "state").rglob("*") if p.is_file()) if root.is_dir() else 0
    needed = max(0, nbytes - existing) + SPACE_MARGIN_BYTES
    probe = root
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        raise SaxctlError(
            f"not enough disk space to convert into {root}: {_gib(free)} free there, the converted checkpoint "
            f"needs {_gib(needed)} more ({_gib(nbytes)} in all)",
            hint="Free some space, or convert on a larger disk: `checkpoint convert --staging DIR`, "
                 "or XDG_CACHE_HOME for the staging copy `saxctl apply` makes (~/.cache/saxctl/staging).",
        )


def _gib(count: int) -> str:
    return f"{count / (1 << 30):.1f} GiB"


def convert(
    source_dir: Path,
    root: Path,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    progress: Progress = SilentProgress(),
    owner: str | None = None,
) -> ConvertResult:
    """Write checkpoint_00000000-style `root` from `source_dir`. Every input check happens before any write."""
    return run(prepare(source_dir, root, vocab_size), progress, owner)


def run(conversion: Conversion, progress: Progress = SilentProgress(), owner: str | None = None) -> ConvertResult:
    source, root, arrays = conversion.source, conversion.root, conversion.arrays
    cached = {path: cached_hash(path) for path in source.files}
    fingerprint = combine_hashes(cached) if all(cached.values()) else None
    wanted = Manifest(SOURCE_FORMAT, fingerprint or "", source.dims.vocab_size, conversion.vocab_size, owner=owner,
                      source_identity=_identity(source.files), rotary_dim=source.dims.rotary_dim)
    previous = load_manifest(root)
    reusable = previous is not None and previous.same_target(wanted) and previous.arrays != {}
    if reusable and previous.source_identity != wanted.source_identity:
        if fingerprint is None:  # the files moved or were touched: only their content can tell
            fingerprint = wanted.source_fingerprint = source_fingerprint(source.directory, progress)
        reusable = previous.source_fingerprint == fingerprint
    # The content hash of what is not cached yet is made as the conversion reads each tensor (one read for both).
    hashers = {path: FileHasher(path, source.torch_shards[path].mapping if path in source.torch_shards else None)
               for path, found in cached.items() if found is None and fingerprint is None}

    root.mkdir(parents=True, exist_ok=True)
    _remove_markers(root)  # from here on, the directory is not a committed checkpoint until we say so again
    manifest = wanted
    if reusable:
        manifest.arrays, manifest.files = previous.arrays, previous.files
    else:
        _remove_stale_arrays(root, {array.name for array in arrays})
    save_manifest(root, manifest)

    state = root / "state"
    total = conversion.nbytes
    done = written = skipped = 0
    progress.update("converting")
    progress.advance(0, total)
    scratch = layout.scratch_buffers()
    for array in arrays:
        if _finished(root, manifest, array):
            skipped += 1
        else:
            hashed = [(tensor.file, hashers[tensor.file].cover(*tensor.span())) for tensor in
                      (source.tensors[name] for name in array.sources) if tensor.file in hashers]
            hashed = [(source.torch_shards[file], span) for file, span in hashed if file in source.torch_shards]
            path = state / array.name
            manifest.files = {k: v for k, v in manifest.files.items() if not k.startswith(f"state/{array.name}/")}
            checksum = zarr_store.write_array(path, array.shape, layout.blocks(array, source.tensors, scratch),
                                              array.order)
            chunk = zarr_store.check_layout(path, array.shape, array.order)
            for shard, (start, stop) in hashed:  # the pages hashed past the tensor's own bytes, too
                shard.release_range(start, stop)
            manifest.arrays[array.name] = {
                "shape": list(array.shape),
                "dtype": "float32",
                "order": array.order,
                "nbytes": array.nbytes,
                "checksum": f"crc32c:{checksum}",
            }
            _record_files(root, manifest, path, {chunk: zarr_store.gcs_crc32c(int(checksum, 16))})
            save_manifest(root, manifest)
            written += 1
        done += array.nbytes
        progress.advance(done, total)

    if fingerprint is None:
        fingerprint = combine_hashes({path: cached[path] or _finish(source, hashers[path]) for path in source.files})
        manifest.source_fingerprint = fingerprint
    tokenizer = root / TOKENIZER_DIR
    tokenizer.mkdir(exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(source.directory / name, tokenizer / name)
        _record_files(root, manifest, tokenizer / name)
    zarr_store.write_step(state / "step")
    zarr_store.write_metadata(root / "metadata" / "metadata")
    _record_files(root, manifest, state / "step")
    _record_files(root, manifest, root / "metadata" / "metadata")
    save_manifest(root, manifest)
    for marker in MARKERS:
        (root / marker).write_text(f"Checkpoint commit was successful to {root}\n")
    return ConvertResult(root, manifest, written, skipped, conversion.notes)


def _identity(files: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.resolve()}\0{FileIdentity.of(path)}\n".encode())
    return digest.hexdigest()


def _finish(source: HfSource, hasher: FileHasher) -> str:
    """Hash what the conversion did not read (zip headers, ignored buffers, arrays a previous run had done)."""
    found = hasher.finish()
    if hasher.path in source.torch_shards:
        source.torch_shards[hasher.path].release_range(0, hasher.identity.size)
    return found


def _remove_markers(root: Path) -> None:
    for marker in reversed(MARKERS):  # the root marker first: it is the one orbax checks
        (root / marker).unlink(missing_ok=True)


def _remove_stale_arrays(root: Path, wanted_names: set[str]) -> None:
    state = root / "state"
    if state.is_dir():
        for entry in state.iterdir():
            if entry.is_dir() and entry.name not in wanted_names and entry.name != "step":
                shutil.rmtree(entry)


def _finished(root: Path, manifest: Manifest, array: layout.PaxArray) -> bool:
    """Recorded (so written and verified by an earlier run) and its files still there with their sizes."""
    recorded = manifest.arrays.get(array.name)
    if recorded is None or recorded["shape"] != list(array.shape):
        return False
    prefix = f"state/{array.name}/"
    files = {name: info for name, info in manifest.files.items() if name.startswith(prefix)}
    return bool(files) and all(
        (root / name).is_file() and (root / name).stat().st_size == info["size"] for name, info in files.items()
    )


def _record_files(root: Path, manifest: Manifest, path: Path, known_crc32c: dict[Path, str] | None = None) -> None:
    """Size and crc32c of every file under path: what the upload compares with GCS's crc32c.

    known_crc32c: files whose crc32c the caller computed from the bytes as it wrote them (not read again).
    """
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    if not files:
        raise SaxctlError(f"{path}: nothing was written")
    for file in files:
        relative = file.relative_to(root).as_posix()
        crc32c = (known_crc32c or {}).get(file) or zarr_store.file_crc32c(file)
        manifest.files[relative] = {"size": file.stat().st_size, "crc32c": crc32c}
