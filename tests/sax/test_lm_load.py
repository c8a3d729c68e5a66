"""What a sandbox model server advertises and loads, and each load it refuses with the reason Sax's status shows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lm_fixture import GPTJ
from reconciler.sandbox.sax.lm import DirectoryCheckpoint, LoadError, load, servable_model_paths

GPTJ4 = "saxml.server.pax.lm.params.gptj.GPTJ4BF16BS32"
LLAMA8 = "saxml.server.pax.lm.params.lm_cloud.LLaMA7BTPUv5e8"


@pytest.mark.parametrize("devices, expected", [
    (1, [GPTJ, "saxml.server.pax.lm.params.lm_cloud.LLaMA7B"]),
    (4, [GPTJ4, "saxml.server.pax.lm.params.lm_cloud.LLaMA7BTPUv5e4"]),
    (8, [LLAMA8]),
    (2, []),
])
def test_servable_model_paths_follow_the_device_count(devices: int, expected: list[str]):
    assert servable_model_paths(devices) == sorted(expected)


@pytest.fixture
def checkpoint_copy(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "checkpoint_00000000"
    shutil.copytree(tiny_checkpoint, copy)
    return copy


def _load_error(model_path: str, root: Path, devices: int = 1) -> str:
    with pytest.raises(LoadError) as caught:
        load(model_path, DirectoryCheckpoint(root), devices)
    return str(caught.value)


def test_unknown_params_class_is_refused(tiny_checkpoint: Path):
    assert "saxml.server.pax.lm.params.gptj.GPTJ7 is not a params class" in _load_error(
        "saxml.server.pax.lm.params.gptj.GPTJ7", tiny_checkpoint)


def test_params_class_needing_other_devices_is_refused(tiny_checkpoint: Path):
    assert _load_error(GPTJ4, tiny_checkpoint, devices=1) == (
        f"{GPTJ4} needs a serving mesh of 4 devices; this server has 1")


def test_llama_cannot_run_in_the_sandbox(tiny_checkpoint: Path):
    assert _load_error(LLAMA8, tiny_checkpoint, devices=8) == (
        f"{LLAMA8} is a llama model: the sandbox model server runs GPT-J only")


def test_gptj4_loads_on_four_devices(tiny_checkpoint: Path):
    model = load(GPTJ4, DirectoryCheckpoint(tiny_checkpoint), 4, warm_up=False)
    assert (model.dims.num_layers, model.dims.model_dims, model.dims.num_heads, model.dims.rotary_dim) == (3, 64, 4, 8)


@pytest.mark.parametrize("missing", ["tokenizer/vocab.json", "tokenizer/merges.txt"])
def test_missing_tokenizer_is_refused(checkpoint_copy: Path, missing: str):
    (checkpoint_copy / missing).unlink()
    assert _load_error(GPTJ, checkpoint_copy).startswith(f"no tokenizer: {missing} is missing from the checkpoint")


def test_wrong_shaped_array_is_refused(checkpoint_copy: Path):
    """Sax would zero-pad or crop it silently (RECIPES §5); the sandbox names it."""
    array = checkpoint_copy / "state" / "mdl_vars.params.lm.transformer.x_layers_1.ff_layer.ffn_layer2.linear.w"
    zarray = json.loads((array / ".zarray").read_text())
    (array / ".zarray").write_text(json.dumps(zarray | {"shape": [256, 65], "chunks": [256, 65]}))
    assert _load_error(GPTJ, checkpoint_copy) == (
        "mdl_vars.params.lm.transformer.x_layers_1.ff_layer.ffn_layer2.linear.w has shape [256, 65], "
        "the model needs [256, 64]")


def test_truncated_chunk_is_refused(checkpoint_copy: Path):
    chunk = checkpoint_copy / "state" / "mdl_vars.params.lm.final_ln.bias" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-4])
    assert "final_ln.bias: its chunk holds 252 bytes, shape [64] needs 256" in _load_error(GPTJ, checkpoint_copy)


def test_checkpoint_not_converted_by_saxctl_is_refused(checkpoint_copy: Path):
    (checkpoint_copy / "saxctl-manifest.json").unlink()
    assert _load_error(GPTJ, checkpoint_copy) == (
        "saxctl-manifest.json is missing from the checkpoint: the sandbox model server serves checkpoints saxctl "
        "converted")
