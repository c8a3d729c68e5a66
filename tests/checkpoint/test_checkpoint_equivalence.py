"""The converted Pax tree computes the logits HF computed, for both source forms and with vocabulary padding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorstore as ts

from gptj_reference import forward, load_pax_tree
from reconciler.checkpoint import zarr_store
from reconciler.checkpoint.convert import convert
from reconciler.checkpoint.manifest import is_committed
from reconciler.checkpoint.manifest import load_manifest, save_manifest
from reconciler.checkpoint.verify import verify_local

ROTARY_DIM = 8  # tiny-gptj's config.json


@pytest.mark.parametrize("form", [".", "safetensors"], ids=["bin-shards", "safetensors"])
@pytest.mark.parametrize("vocab_size", [257, 264], ids=["same-vocab", "padded-vocab"])
def test_logits_match_hf(tiny_gptj: Path, tmp_path: Path, form: str, vocab_size: int):
    root = tmp_path / "checkpoint_00000000"
    result = convert(tiny_gptj / form, root, vocab_size=vocab_size)
    assert is_committed(root)
    assert bool(result.notes) == (vocab_size != 257)

    tree = load_pax_tree(root)
    input_ids = np.load(tiny_gptj / "input_ids.npy")
    expected = np.load(tiny_gptj / "logits.npy")
    for sequence, expected_logits in zip(input_ids, expected):
        logits = forward(tree, sequence, ROTARY_DIM)
        assert logits.shape == (len(sequence), vocab_size)
        np.testing.assert_allclose(logits[:, :257], expected_logits, atol=1e-4, rtol=0)
        assert not logits[:, 257:].any(), "padded vocabulary rows must be zeros"


def test_layout_is_what_paxml_restores(tiny_gptj: Path, tmp_path: Path):
    root = tmp_path / "checkpoint_00000000"
    convert(tiny_gptj, root, vocab_size=257)
    assert json.loads((root / "metadata" / "metadata").read_text()) == {"version": 1.1}
    step = ts.open({"driver": "zarr", "kvstore": {"driver": "file", "path": str(root / "state" / "step")}}).result()
    assert step.shape == () and int(step.read().result()) == 0
    qkv = root / "state" / "mdl_vars.params.lm.transformer.x_layers_0.self_attention.combined_qkv.w"
    zarray = json.loads((qkv / ".zarray").read_text())
    assert zarray["shape"] == zarray["chunks"] == [3, 64, 4, 16]
    # Uncompressed (chosen by measurement, bench/results/checkpoint_codecs.md): paxml reads any codec the zarr
    # metadata names, and tensorstore, its reader, decoded every array for the logits above.
    assert (zarray["dtype"], zarray["compressor"], zarray["order"], zarray["zarr_format"]) == ("<f4", None, "C", 2)
    # A transposed matrix is its source's bytes in Fortran order: nothing turned, and tensorstore reads the transpose.
    ffn = root / "state" / "mdl_vars.params.lm.transformer.x_layers_0.ff_layer.ffn_layer1.linear.w"
    assert json.loads((ffn / ".zarray").read_text())["order"] == "F"
    assert (ffn / "0.0").read_bytes() == _source_tensor(tiny_gptj, "transformer.h.0.mlp.fc_in.weight").tobytes()
    arrays = sorted(p.name for p in (root / "state").iterdir() if p.name.startswith("mdl_vars."))
    assert len(arrays) == 5 + 8 * 3  # the same count rule that gives GPT-J 6B its 229 arrays


def test_jax_checkpoint_restore_reads_the_fortran_order_arrays_as_transposes(tiny_gptj: Path, tmp_path: Path):
    """paxml restores through JAX's GDA deserialization: through it, the arrays stored as their source's bytes (order
    F) read as the transposes the Pax tree needs, the padded lm_head too."""
    import jax
    from jax.experimental.array_serialization import serialization

    root = tmp_path / "checkpoint_00000000"
    convert(tiny_gptj / "safetensors", root, vocab_size=260)
    wanted = {
        "transformer.x_layers_0.ff_layer.ffn_layer1.linear.w":
            _source_tensor(tiny_gptj, "transformer.h.0.mlp.fc_in.weight").T,
        "transformer.x_layers_2.ff_layer.ffn_layer2.linear.w":
            _source_tensor(tiny_gptj, "transformer.h.2.mlp.fc_out.weight").T,
        "softmax.logits_ffn.linear.w": np.pad(_source_tensor(tiny_gptj, "lm_head.weight").T, [(0, 0), (0, 3)]),
    }
    paths = [str(root / "state" / f"mdl_vars.params.lm.{name}") for name in wanted]
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    restored = serialization.GlobalAsyncCheckpointManager().deserialize_with_paths([sharding] * len(paths), paths)
    for (name, expected), array in zip(wanted.items(), restored):
        np.testing.assert_array_equal(np.asarray(array), expected, err_msg=name)


def test_a_checkpoint_converted_before_fortran_order_stays_valid_and_is_not_converted_again(tiny_gptj: Path,
                                                                                            tmp_path: Path):
    """Before, every array was C order and the manifest named no order: such a checkpoint is kept, as it reads the
    same values."""
    root = tmp_path / "checkpoint_00000000"
    convert(tiny_gptj, root, vocab_size=257)
    manifest = load_manifest(root)
    for name, info in manifest.arrays.items():
        if info.pop("order") == "F":  # rewrite it as the converter did before: the transpose, in C order
            path = root / "state" / name
            spec = {"driver": "zarr", "kvstore": {"driver": "file", "path": str(path)}}
            values = ts.open(spec).result().read().result()
            checksum = zarr_store.write_array(path, values.shape, [((slice(0, values.shape[0]),), values)])
            info["checksum"] = f"crc32c:{checksum}"
            for file in path.iterdir():
                manifest.files[f"state/{name}/{file.name}"] = {"size": file.stat().st_size,
                                                               "crc32c": zarr_store.file_crc32c(file)}
    save_manifest(root, manifest)

    assert convert(tiny_gptj, root, vocab_size=257).written == 0
    assert verify_local(root).arrays == 29
    logits = forward(load_pax_tree(root), np.load(tiny_gptj / "input_ids.npy")[0], ROTARY_DIM)
    np.testing.assert_allclose(logits, np.load(tiny_gptj / "logits.npy")[0], atol=1e-4, rtol=0)


def _source_tensor(model: Path, name: str) -> np.ndarray:
    from safetensors.numpy import load_file

    return load_file(str(model / "safetensors" / "model.safetensors"))[name]


def test_rerun_skips_finished_work(tiny_gptj: Path, tmp_path: Path):
    root = tmp_path / "checkpoint_00000000"
    first = convert(tiny_gptj, root, vocab_size=257)
    again = convert(tiny_gptj, root, vocab_size=257)
    assert (first.written, again.written, again.skipped) == (29, 0, 29)
    assert again.manifest.arrays == first.manifest.arrays
    padded = convert(tiny_gptj, root, vocab_size=260)  # another target: nothing of the old run is reused
    assert padded.written == 29 and is_committed(root)
