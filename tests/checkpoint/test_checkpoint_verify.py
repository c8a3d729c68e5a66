"""Verification catches what paxml would load silently: flipped bytes, missing chunks, wrong shapes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from reconciler.checkpoint import zarr_store
from reconciler.checkpoint.convert import convert
from reconciler.checkpoint.manifest import load_manifest, save_manifest
from reconciler.checkpoint.verify import verify_local
from reconciler.errors import SaxctlError

EMBEDDING = "state/mdl_vars.params.lm.embedding_lookup.emb_var"


@pytest.fixture(scope="module")
def converted(tiny_gptj: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("verify") / "checkpoint_00000000"
    convert(tiny_gptj, root, vocab_size=257)
    return root


@pytest.fixture
def damaged(converted: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "checkpoint_00000000"
    shutil.copytree(converted, copy)
    return copy


def _write_other_values(root: Path) -> None:
    """Same shape, dtype and compression, other numbers: only the checksum can tell."""
    blocks = [((slice(0, 257),), np.ones((257, 64), np.float32))]
    zarr_store.write_array(root / EMBEDDING, (257, 64), blocks)


def test_clean_checkpoint_verifies(converted: Path):
    assert verify_local(converted).arrays == 29


def test_other_values_are_caught(damaged: Path):
    _write_other_values(damaged)
    with pytest.raises(SaxctlError, match="emb_var"):
        verify_local(damaged)


def test_missing_chunk_is_caught(damaged: Path):
    (damaged / EMBEDDING / "0.0").unlink()
    with pytest.raises(SaxctlError, match="emb_var"):
        verify_local(damaged)


def test_wrong_shape_is_caught(damaged: Path):
    zarray = damaged / EMBEDDING / ".zarray"
    zarray.write_text(json.dumps(json.loads(zarray.read_text()) | {"shape": [256, 64]}))
    with pytest.raises(SaxctlError, match=r"emb_var.*\[257, 64\]"):
        verify_local(damaged)


def test_missing_marker_is_caught(damaged: Path):
    (damaged / "state" / "commit_success.txt").unlink()
    with pytest.raises(SaxctlError, match="commit markers missing"):
        verify_local(damaged)


FFN = "mdl_vars.params.lm.transformer.x_layers_0.ff_layer.ffn_layer1.linear.w"


def test_an_array_whose_order_changed_is_caught(damaged: Path):
    """Read in C order, an array stored as its source's bytes in F order would be a scrambled transpose."""
    zarray = damaged / "state" / FFN / ".zarray"
    zarray.write_text(json.dumps(json.loads(zarray.read_text()) | {"order": "C"}))
    with pytest.raises(SaxctlError, match=r"ffn_layer1.*not one uncompressed F-order chunk"):
        verify_local(damaged)


def test_a_manifest_without_orders_means_c_order_as_the_converter_wrote_before_it_recorded_them(damaged: Path):
    manifest = load_manifest(damaged)
    for info in manifest.arrays.values():
        if info["order"] == "C":
            del info["order"]
    save_manifest(damaged, manifest)
    assert verify_local(damaged).arrays == 29
    del manifest.arrays[FFN]["order"]  # an F-order array under a manifest that does not say so
    save_manifest(damaged, manifest)
    with pytest.raises(SaxctlError, match="ffn_layer1"):
        verify_local(damaged)
