"""The HF GPT-J → Pax name and shape table (saxml's convert_gptj_ckpt.py), producing each array in row blocks."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Mapping

if TYPE_CHECKING:  # numpy (60 ms) is imported where arrays are made: every plan imports this module
    import numpy as np

from reconciler.checkpoint import zarr_store
from reconciler.checkpoint.gptj_config import GptjDims
from reconciler.checkpoint.hf_source import SourceTensor
from reconciler.errors import SaxctlError

PAX_PREFIX = "mdl_vars.params.lm."
BLOCK_BYTES = 64 << 20  # one block of the output in memory at a time

# Buffers that HF GPT-J checkpoints carry but that are not weights (the causal mask and its fill value).
_IGNORED = re.compile(r"transformer\.h\.\d+\.attn\.(bias|masked_bias)")

# TRANSPOSE costs no work: a matrix's transpose in Fortran order is the matrix's own bytes in C order, and zarr
# (so tensorstore, so paxml) reads either order. Those arrays are stored as their source's bytes, with order "F".
COPY, TRANSPOSE, QKV, SPLIT_HEADS = "copy", "transpose", "qkv", "split-heads"


@dataclass(frozen=True, slots=True)
class PaxArray:
    """One array of the Pax tree: its name, shape, the HF tensors it comes from and how."""

    name: str  # e.g. mdl_vars.params.lm.transformer.x_layers_0.self_attention.post.w
    shape: tuple[int, ...]
    sources: tuple[str, ...]
    transform: str  # COPY, TRANSPOSE, QKV or SPLIT_HEADS

    @property
    def nbytes(self) -> int:
        return 4 * math.prod(self.shape)

    @property
    def order(self) -> str:
        """zarr's "order" of the stored chunk."""
        return "F" if self.transform == TRANSPOSE else "C"

    @property
    def stored_shape(self) -> tuple[int, ...]:
        return zarr_store.stored_shape(self.shape, self.order)


def pax_arrays(dims: GptjDims, vocab_size: int) -> list[PaxArray]:
    """Every array saxml's GPT-J params read, in a fixed order (the order the manifest and the progress use)."""
    d, v, f, n, h = dims.model_dims, vocab_size, dims.hidden_dims, dims.num_heads, dims.dims_per_head
    arrays = [
        PaxArray("embedding_lookup.emb_var", (v, d), ("transformer.wte.weight",), COPY),
        PaxArray("softmax.logits_ffn.linear.w", (d, v), ("lm_head.weight",), TRANSPOSE),
        PaxArray("softmax.logits_ffn.bias.b", (v,), ("lm_head.bias",), COPY),
        PaxArray("final_ln.scale", (d,), ("transformer.ln_f.weight",), COPY),
        PaxArray("final_ln.bias", (d,), ("transformer.ln_f.bias",), COPY),
    ]
    for i in range(dims.num_layers):
        hf, pax = f"transformer.h.{i}.", f"transformer.x_layers_{i}."
        arrays += [
            PaxArray(pax + "layer_norm.scale", (d,), (hf + "ln_1.weight",), COPY),
            PaxArray(pax + "layer_norm.bias", (d,), (hf + "ln_1.bias",), COPY),
            PaxArray(
                pax + "self_attention.combined_qkv.w",
                (3, d, n, h),
                tuple(hf + f"attn.{p}_proj.weight" for p in "qkv"),
                QKV,
            ),
            PaxArray(pax + "self_attention.post.w", (d, n, h), (hf + "attn.out_proj.weight",), SPLIT_HEADS),
            PaxArray(pax + "ff_layer.ffn_layer1.linear.w", (d, f), (hf + "mlp.fc_in.weight",), TRANSPOSE),
            PaxArray(pax + "ff_layer.ffn_layer1.bias.b", (f,), (hf + "mlp.fc_in.bias",), COPY),
            PaxArray(pax + "ff_layer.ffn_layer2.linear.w", (f, d), (hf + "mlp.fc_out.weight",), TRANSPOSE),
            PaxArray(pax + "ff_layer.ffn_layer2.bias.b", (d,), (hf + "mlp.fc_out.bias",), COPY),
        ]
    return [PaxArray(PAX_PREFIX + a.name, a.shape, a.sources, a.transform) for a in arrays]


def expected_source_shapes(dims: GptjDims) -> dict[str, tuple[int, ...]]:
    d, v, f = dims.model_dims, dims.vocab_size, dims.hidden_dims
    shapes = {
        "transformer.wte.weight": (v, d),
        "lm_head.weight": (v, d),
        "lm_head.bias": (v,),
        "transformer.ln_f.weight": (d,),
        "transformer.ln_f.bias": (d,),
    }
    for i in range(dims.num_layers):
        hf = f"transformer.h.{i}."
        shapes |= {hf + "ln_1.weight": (d,), hf + "ln_1.bias": (d,)}
        shapes |= {hf + f"attn.{p}_proj.weight": (d, d) for p in ("q", "k", "v", "out")}
        shapes |= {hf + "mlp.fc_in.weight": (f, d), hf + "mlp.fc_in.bias": (f,)}
        shapes |= {hf + "mlp.fc_out.weight": (d, f), hf + "mlp.fc_out.bias": (d,)}
    return shapes


def check_source(tensors: Mapping[str, SourceTensor], dims: GptjDims, vocab_size: int, config_file: str) -> None:
    """Every tensor present with the shape config.json implies, and nothing GPT-J lacks (e.g. q/k/v biases)."""
    if vocab_size < dims.vocab_size:
        raise SaxctlError(f"{config_file}: vocab_size {dims.vocab_size} is larger than the target's {vocab_size}; "
                          "refusing to drop rows")
    expected = expected_source_shapes(dims)
    for name, shape in expected.items():
        tensor = tensors.get(name)
        if tensor is None:
            raise SaxctlError(f"{config_file}: tensor {name} is missing from the checkpoint")
        if tensor.shape != shape:
            raise SaxctlError(f"{tensor.file}: tensor {name} has shape {list(tensor.shape)}, "
                              f"config.json implies {list(shape)}")
    for name, tensor in tensors.items():
        if name not in expected and not _IGNORED.fullmatch(name):
            raise SaxctlError(f"{tensor.file}: tensor {name} is not part of GPT-J (e.g. attention biases); "
                              "not a GPT-J checkpoint?")


Block = tuple[tuple[slice | int, ...], "np.ndarray"]


def scratch_buffers() -> tuple[np.ndarray, np.ndarray]:
    """Two blocks' worth of float32 for blocks() to fill in turn: one is written while the next is made."""
    import numpy as np

    return np.empty(BLOCK_BYTES // 4, dtype=np.float32), np.empty(BLOCK_BYTES // 4, dtype=np.float32)


def blocks(array: PaxArray, tensors: Mapping[str, SourceTensor],
           scratch: tuple[np.ndarray, np.ndarray] | None = None) -> Iterator[Block]:
    """(index into array.stored_shape, float32 values) in C order of the stored chunk, each at most about BLOCK_BYTES.

    Yielding in storage order lets the caller checksum and write the chunk as it goes. A block is a view of one of
    the `scratch` buffers (used in turn) or its own: a block stays valid until the caller has asked for the one after
    the next. GPT-J's rotary embedding is "rotate every two" in HF and in Pax alike, so q and k are taken as they
    are, with no permutation.
    """
    import numpy as np

    sources = [tensors[name] for name in array.sources]
    turns = itertools.cycle(scratch or (None,))
    if array.transform == QKV:  # [3, D, N, H]: q, then k, then v, each the transpose of a [N*H, D] matrix
        for which, source in enumerate(sources):
            for rows in _row_blocks(array.shape[1], array.shape[2:]):
                yield (which, rows), source.columns_transposed(rows, out=next(turns)).reshape(-1, *array.shape[2:])
            source.release(0, source.shape[0])
        return
    (source,) = sources
    stored = array.stored_shape
    for rows in _row_blocks(stored[0], stored[1:]):
        # COPY, TRANSPOSE and SPLIT_HEADS store whole source rows; rows past the source's vocabulary are zeros
        # (padding: for lm_head's transpose, the last columns). The rows are copied out (a memcpy) so that their
        # pages leave our resident set now, not after the write.
        stop = min(rows.stop, source.shape[0])
        if rows.start < stop:
            mapped = source.rows(rows.start, stop).reshape(-1, *stored[1:])
            buffer = next(turns)
            values = np.empty_like(mapped) if buffer is None else buffer[: mapped.size].reshape(mapped.shape)
            values[...] = mapped
            source.release(rows.start, stop)
            yield (slice(rows.start, stop),), values
        if stop < rows.stop:
            start = max(rows.start, stop)
            yield (slice(start, rows.stop),), np.zeros((rows.stop - start, *stored[1:]), np.float32)


def _row_blocks(count: int, row_shape: tuple[int, ...]) -> Iterator[slice]:
    step = max(1, BLOCK_BYTES // (4 * math.prod(row_shape)))
    for start in range(0, count, step):
        yield slice(start, min(count, start + step))
