"""Bad sources fail with an error naming the file and the tensor, exit non-zero without a traceback, write nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.checkpoint_torchzip import write_arrays
from reconciler.checkpoint.convert import convert
from reconciler.checkpoint.torch_zip import TorchShard
from reconciler.cli import main
from reconciler.errors import SaxctlError

SHARD_1 = "pytorch_model-00001-of-00002.bin"
SHARD_2 = "pytorch_model-00002-of-00002.bin"


def _rewrite_shard(model: Path, shard_name: str, change) -> None:
    """Read a shard with our reader, let `change` edit the arrays, write it back in torch's zip-pickle format."""
    shard = TorchShard(model / shard_name)
    arrays = {name: shard.view(name).copy() for name in shard.records}
    change(arrays)
    write_arrays(model / shard_name, arrays)


def _missing_shard(model: Path):
    (model / SHARD_2).unlink()
    return [SHARD_2, "transformer.h.1.mlp.fc_in.bias"]


def _wrong_shape(model: Path):
    name = "transformer.h.0.attn.q_proj.weight"
    _rewrite_shard(model, SHARD_1, lambda arrays: arrays.update({name: arrays[name][:, :32]}))
    return [SHARD_1, "transformer.h.0.attn.q_proj.weight", "[64, 32]"]


def _attention_bias(model: Path):
    bias = "transformer.h.0.attn.q_proj.bias"
    _rewrite_shard(model, SHARD_1, lambda arrays: arrays.update({bias: arrays["transformer.h.0.ln_1.bias"]}))
    return [SHARD_1, "transformer.h.0.attn.q_proj.bias"]


def _not_gptj(model: Path):
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps(config | {"model_type": "gpt2"}))
    return ["config.json", "gpt2"]


def _truncated_file(model: Path):
    path = model / SHARD_2
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return [SHARD_2, "truncated"]


def _truncated_tensor_data(model: Path):
    """The zip is intact but one storage is shorter than its tensor: caught before any byte is read from it."""
    from bench.checkpoint_torchzip import state_dict_pickle, write_shard

    shard = TorchShard(model / SHARD_1)
    tensors = []
    for name, record in shard.records.items():
        data = shard.view(name).tobytes()
        kept = data[: len(data) // 2] if name.endswith("fc_in.weight") else data
        tensors.append((name, record.shape, "float32", [kept]))
    write_shard(model / SHARD_1, tensors, state_dict_pickle([(n, s, d) for n, s, d, _ in tensors]))
    return [SHARD_1, "transformer.h.0.mlp.fc_in.weight"]


def _code_in_pickle(model: Path):
    """A pickle that would run a shell command if loaded with pickle.load (the known .bin attack)."""
    proof = model / "pwned"
    payload = f"touch {proof}".encode()
    pickle_bytes = b"\x80\x02cos\nsystem\nX" + len(payload).to_bytes(4, "little") + payload + b"\x85R."
    with zipfile.ZipFile(model / SHARD_2, "w") as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        archive.writestr("archive/byteorder", "little")
    return [SHARD_2, "os.system"]


def _code_via_builtins(model: Path):
    pickle_bytes = b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1\x85R."
    with zipfile.ZipFile(model / SHARD_1, "w") as archive:
        archive.writestr("x/data.pkl", pickle_bytes)
    return [SHARD_1, "builtins.eval"]


BAD_SOURCES = [
    _missing_shard, _wrong_shape, _attention_bias, _not_gptj, _truncated_file, _truncated_tensor_data,
    _code_in_pickle, _code_via_builtins,
]


@pytest.mark.parametrize("damage", BAD_SOURCES, ids=lambda f: f.__name__.strip("_"))
def test_bad_source_is_refused_before_anything_is_written(tiny_gptj_copy: Path, tmp_path: Path, damage):
    expected_words = damage(tiny_gptj_copy)
    root = tmp_path / "out" / "checkpoint_00000000"
    with pytest.raises(SaxctlError) as raised:
        convert(tiny_gptj_copy, root, vocab_size=257)
    for word in expected_words:
        assert word in raised.value.message
    assert not root.exists()
    assert not (tiny_gptj_copy / "pwned").exists()


def test_bad_source_leaves_a_committed_destination_as_it_was(tiny_gptj: Path, tiny_gptj_copy: Path, tmp_path: Path):
    root = tmp_path / "checkpoint_00000000"
    convert(tiny_gptj, root, vocab_size=257)
    before = sorted((p.relative_to(root), p.stat().st_mtime_ns) for p in root.rglob("*"))
    _wrong_shape(tiny_gptj_copy)
    with pytest.raises(SaxctlError):
        convert(tiny_gptj_copy, root, vocab_size=257)
    assert sorted((p.relative_to(root), p.stat().st_mtime_ns) for p in root.rglob("*")) == before


def test_larger_source_vocabulary_is_refused(tiny_gptj: Path, tmp_path: Path):
    with pytest.raises(SaxctlError, match="vocab_size 257 is larger than the target's 200"):
        convert(tiny_gptj, tmp_path / "checkpoint_00000000", vocab_size=200)


def test_cli_reports_without_traceback(tiny_gptj_copy: Path, tmp_path: Path):
    _missing_shard(tiny_gptj_copy)
    result = CliRunner().invoke(
        main, ["checkpoint", "convert", "--from", str(tiny_gptj_copy), "--to", str(tmp_path / "out"),
               "--vocab-size", "257"]
    )
    assert result.exit_code == 1
    assert SHARD_2 in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from reconciler.cli import main\n"
        "heavy = ('tensorstore', 'numpy', 'google.cloud.storage', 'jax', 'safetensors')\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_truncated_safetensors_is_refused(tiny_gptj: Path, tmp_path: Path):
    source = tmp_path / "safetensors"
    shutil.copytree(tiny_gptj / "safetensors", source)
    weights = source / "model.safetensors"
    weights.chmod(0o644)
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(SaxctlError, match="model.safetensors"):
        convert(source, tmp_path / "out" / "checkpoint_00000000", vocab_size=257)
    assert not (tmp_path / "out").exists()
