"""Fixtures for the checkpoint tests: the tiny GPT-J made with transformers, and copies of it to damage."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_GPTJ = REPO_ROOT / "tests" / "fixtures" / "tiny-gptj"  # made by tests/fixtures/make_tiny_gptj.py


@pytest.fixture(scope="session")
def tiny_gptj() -> Path:
    return TINY_GPTJ


@pytest.fixture
def tiny_gptj_copy(tiny_gptj: Path, tmp_path: Path) -> Path:
    """A writable copy of the .bin form, for tests that damage it."""
    copy = tmp_path / "tiny-gptj"
    shutil.copytree(tiny_gptj, copy, ignore=shutil.ignore_patterns("safetensors"))
    for path in copy.iterdir():
        path.chmod(0o644)
    return copy


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own ~/.cache/saxctl (source hashes, staging copies), for it and the saxctl it starts."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


def change_one_weight(shard: Path) -> None:
    """Change the bytes of one weight in a .bin shard in place: same size, old mtime put back (only content differs)."""
    from reconciler.checkpoint.torch_zip import TorchShard

    stat = shard.stat()
    loaded = TorchShard(shard)
    record = next(record for record in loaded.records.values() if record.shape)
    start, _ = loaded._storage_span(record.storage_key)
    with open(shard, "r+b") as handle:
        handle.seek(start)
        first = handle.read(4)
        handle.seek(start)
        handle.write(bytes(b ^ 0x55 for b in first))
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
