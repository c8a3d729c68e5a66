"""Convert a HF GPT-J directory into a Pax checkpoint directory, tensor by tensor, markers last; re-runs resume."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from reconciler.checkpoint import layout, zarr_store
from reconciler.checkpoint.hf_source import open_source
from reconciler.checkpoint.manifest import MARKERS, Manifest, load_manifest, save_manifest
from reconciler.engine.provider import Progress
from reconciler.errors import SaxctlError

log = logging.getLogger(__name__)

SOURCE_FORMAT = "hf-gptj"
DEFAULT_VOCAB_SIZE = 50401  # what saxml.server.pax.lm.params.gptj.GPTJ builds


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


def convert(
    source_dir: Path,
    root: Path,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    progress: Progress = SilentProgress(),
    owner: str | None = None,
) -> ConvertResult:
    """Write checkpoint_00000000-style `root` from `source_dir`. Every input check happens before any write."""
    source = open_source(Path(source_dir))
    config_file = str(source.directory / "config.json")
    layout.check_source(source.tensors, source.dims, vocab_size, config_file)
    arrays = layout.pax_arrays(source.dims, vocab_size)
    notes = []
    if vocab_size > source.dims.vocab_size:
        notes.append(
            f"vocabulary padded from {source.dims.vocab_size} to {vocab_size} rows with zeros "
            f"(embedding rows, softmax columns and bias): the target params expect {vocab_size}"
        )

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _remove_markers(root)  # from here on, the directory is not a committed checkpoint until we say so again
    wanted = Manifest(SOURCE_FORMAT, source.fingerprint, source.dims.vocab_size, vocab_size, owner=owner)
    previous = load_manifest(root)
    manifest = wanted
    if previous is not None and previous.matches(wanted):
        manifest.arrays, manifest.files = previous.arrays, previous.files
    else:
        manifest.arrays, manifest.files = {}, {}
        _remove_stale_arrays(root, {array.name for array in arrays})
    save_manifest(root, manifest)

    state = root / "state"
    total = sum(array.nbytes for array in arrays)
    done = written = skipped = 0
    progress.advance(0, total)
    for array in arrays:
        if _finished(root, manifest, array):
            skipped += 1
        else:
            progress.update(array.name)
            path = state / array.name
            manifest.files = {k: v for k, v in manifest.files.items() if not k.startswith(f"state/{array.name}/")}
            checksum = zarr_store.write_array(path, array.shape, layout.blocks(array, source.tensors))
            zarr_store.verify_array(path, array.shape, checksum)
            manifest.arrays[array.name] = {
                "shape": list(array.shape),
                "dtype": "float32",
                "nbytes": array.nbytes,
                "checksum": f"crc32c:{checksum}",
            }
            _record_files(root, manifest, path)
            save_manifest(root, manifest)
            written += 1
        done += array.nbytes
        progress.advance(done, total)

    zarr_store.write_step(state / "step")
    zarr_store.write_metadata(root / "metadata" / "metadata")
    _record_files(root, manifest, state / "step")
    _record_files(root, manifest, root / "metadata" / "metadata")
    save_manifest(root, manifest)
    for marker in MARKERS:
        (root / marker).write_text(f"Checkpoint commit was successful to {root}\n")
    return ConvertResult(root, manifest, written, skipped, tuple(notes))


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


def _record_files(root: Path, manifest: Manifest, path: Path) -> None:
    """Size and crc32c of every file under path: what the upload compares with GCS's crc32c."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    if not files:
        raise SaxctlError(f"{path}: nothing was written")
    for file in files:
        relative = file.relative_to(root).as_posix()
        manifest.files[relative] = {"size": file.stat().st_size, "crc32c": zarr_store.file_crc32c(file)}


def is_committed(root: Path) -> bool:
    return all((root / marker).is_file() for marker in MARKERS)
