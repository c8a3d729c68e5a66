"""Kill -9 a conversion mid-way: nothing is marked committed, and a re-run finishes from where it stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.checkpoint_synthetic import GptjShape, write_synthetic_gptj
from reconciler.checkpoint.convert import convert
from reconciler.checkpoint.manifest import is_committed
from reconciler.checkpoint.manifest import MARKERS, load_manifest
from reconciler.checkpoint.verify import verify_local

REPO_ROOT = Path(__file__).resolve().parents[2]
MEDIUM = GptjShape(layers=4, vocab=8000, d_model=512, heads=8, ffn=2048, rotary_dim=32)  # ~84 MB: a few seconds


@pytest.fixture(scope="module")
def medium_gptj(tmp_path_factory) -> Path:
    return write_synthetic_gptj(tmp_path_factory.mktemp("medium") / "gptj", MEDIUM, shard_bytes=30 << 20)


def _wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def _recorded_arrays(root: Path) -> int:
    try:
        manifest = load_manifest(root)
    except Exception:  # the manifest is replaced atomically, but may not exist yet
        return 0
    return len(manifest.arrays) if manifest else 0


def test_killed_conversion_resumes(medium_gptj: Path, tmp_path: Path):
    root = tmp_path / "checkpoint_00000000"
    command = [sys.executable, "-m", "reconciler", "checkpoint", "convert", "--from", str(medium_gptj),
               "--to", str(root), "--vocab-size", "8000"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: _recorded_arrays(root) >= 3 or process.poll() is not None)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the conversion finished before it could be killed"
    assert not any((root / marker).exists() for marker in MARKERS)
    finished_before_kill = _recorded_arrays(root)
    assert 3 <= finished_before_kill < 5 + 8 * MEDIUM.layers

    result = convert(medium_gptj, root, vocab_size=8000)
    assert result.skipped >= finished_before_kill and result.written + result.skipped == 5 + 8 * MEDIUM.layers
    assert is_committed(root)
    assert verify_local(root).arrays == 5 + 8 * MEDIUM.layers


def test_changed_array_file_is_rewritten(medium_gptj: Path, tmp_path: Path):
    """A recorded array whose chunk file was damaged later is converted again, not trusted."""
    root = tmp_path / "checkpoint_00000000"
    convert(medium_gptj, root, vocab_size=8000)
    chunk = root / "state" / "mdl_vars.params.lm.final_ln.scale" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-10])
    result = convert(medium_gptj, root, vocab_size=8000)
    assert result.written == 1
    verify_local(root)
