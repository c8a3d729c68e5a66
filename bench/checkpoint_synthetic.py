"""A synthetic HF GPT-J directory of any size (.bin shards, index, config), written without torch in bounded memory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from bench.checkpoint_torchzip import write_shard

_NOISE_BYTES = 16 << 20  # one random buffer, sliced at varying offsets: fast to produce, poor for zstd to compress


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


def _chunks(noise: bytes, nbytes: int, seed: int) -> Iterator[bytes]:
    position = (seed * 4099 * 4) % (len(noise) - 4)  # float-aligned start, different per tensor
    while nbytes > 0:
        take = min(nbytes, len(noise) - position)
        yield noise[position : position + take]
        nbytes -= take
        position = 0


def write_synthetic_gptj(directory: Path, shape: GptjShape, shard_bytes: int = 10 << 30) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    noise = (np.random.default_rng(0).standard_normal(_NOISE_BYTES // 4, dtype=np.float32) * 0.02).tobytes()
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
    for number, group in enumerate(groups, 1):
        shard_name = f"pytorch_model-{number:05d}-of-{len(groups):05d}.bin"
        write_shard(
            directory / shard_name,
            [(name, s, "float32", _chunks(noise, 4 * int(np.prod(s)), seed)) for seed, (name, s) in enumerate(group)],
        )
        weight_map |= {name: shard_name for name, _ in group}
    index = {"metadata": {"total_size": shape.nbytes}, "weight_map": weight_map}
    (directory / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=1))
    (directory / "config.json").write_text(json.dumps(shape.config(), indent=1))
    return directory
