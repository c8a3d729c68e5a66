"""A synthetic HF GPT-J directory of any size (shards, index, config, tokenizer), in bounded memory, without torch."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from bench.checkpoint_torchzip import write_shard
from reconciler.sandbox.sample_checkpoint import write_sample_tokenizer

_CHUNK_VALUES = 4 << 20  # float32 values drawn at a time (16 MB): bounded memory for any tensor size
_SCALE = 0.02  # GPT-J's init scale: random-normal fp32 at this scale keeps 92% of its size under zstd -1, as
# trained weights do (RECIPES §10), so the benchmark compresses no better than a real checkpoint


@dataclass(frozen=True, slots=True)
class GptjShape:
    layers: int = 28
    vocab: int = 50401
    d_model: int = 4096
    heads: int = 16
    ffn: int = 16384
    rotary_dim: int = 64

    def tensors(self) -> list[tuple[str, tuple[int, ...]]]:
        """HF GPT-J state_dict names and shapes, in the order HF writes them."""
        d, v, f = self.d_model, self.vocab, self.ffn
        names = [("transformer.wte.weight", (v, d))]
        for i in range(self.layers):
            h = f"transformer.h.{i}."
            names += [(h + "ln_1.weight", (d,)), (h + "ln_1.bias", (d,))]
            names += [(h + f"attn.{p}_proj.weight", (d, d)) for p in ("k", "v", "q", "out")]
            names += [(h + "mlp.fc_in.weight", (f, d)), (h + "mlp.fc_in.bias", (f,))]
            names += [(h + "mlp.fc_out.weight", (d, f)), (h + "mlp.fc_out.bias", (d,))]
        names += [("transformer.ln_f.weight", (d,)), ("transformer.ln_f.bias", (d,))]
        names += [("lm_head.weight", (v, d)), ("lm_head.bias", (v,))]
        return names

    @property
    def nbytes(self) -> int:
        return sum(4 * int(np.prod(shape)) for _, shape in self.tensors())

    def config(self) -> dict:
        return {
            "model_type": "gptj", "activation_function": "gelu_new", "n_embd": self.d_model, "n_head": self.heads,
            "n_layer": self.layers, "n_inner": self.ffn, "rotary_dim": self.rotary_dim, "vocab_size": self.vocab,
            "n_positions": 2048, "layer_norm_epsilon": 1e-5, "tie_word_embeddings": False,
        }


def _chunks(values: int, stream: int) -> Iterator[bytes]:
    """A tensor's bytes from its own random stream: no block repeats within or across tensors (a repeated block
    would let the codec find it again after the transposes, and flatter compression 4x)."""
    rng = np.random.default_rng([20261201, stream])
    while values > 0:
        take = min(values, _CHUNK_VALUES)
        yield (rng.standard_normal(take, dtype=np.float32) * np.float32(_SCALE)).tobytes()
        values -= take


def write_synthetic_gptj(directory: Path, shape: GptjShape, shard_bytes: int = 10 << 30) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    groups: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    size = 0
    for name, tensor_shape in shape.tensors():
        tensor_bytes = 4 * int(np.prod(tensor_shape))
        if groups[-1] and size + tensor_bytes > shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append((name, tensor_shape))
        size += tensor_bytes
    weight_map = {}
    streams = iter(range(len(shape.tensors())))
    for number, group in enumerate(groups, 1):
        shard_name = f"pytorch_model-{number:05d}-of-{len(groups):05d}.bin"
        write_shard(
            directory / shard_name,
            [(name, s, "float32", _chunks(int(np.prod(s)), next(streams))) for name, s in group],
        )
        weight_map |= {name: shard_name for name, _ in group}
    index = {"metadata": {"total_size": shape.nbytes}, "weight_map": weight_map}
    (directory / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=1))
    (directory / "config.json").write_text(json.dumps(shape.config(), indent=1))
    write_sample_tokenizer(directory)  # vocab.json and merges.txt, which a GPT-J source carries beside its weights
    return directory
