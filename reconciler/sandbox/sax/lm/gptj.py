"""GPT-J in JAX over the Pax tree, as saxml's GPTJ params build it: a prompt pass that fills a key/value cache, then
one token per beam per step.

The block is HF's GPTJBlock and Pax's ParallelTransformerOnlyNormAttentionInputs alike: h = ln(x);
x + attention(h) + mlp(h); rotary on the first rotary_dim features of each head in interleaved pairs; no biases on
q/k/v/out; tanh GELU; a final LayerNorm; the softmax layer with a bias. Layers run under lax.scan over stacked
weights, so the compile time does not grow with the layer count. Everything is float32 (Sax's GPTJ4BF16BS32
computes in bfloat16).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from reconciler.sandbox.sax.lm.checkpoint_reader import CheckpointReader, LoadError, read_array, read_shape

LAYER_NORM_EPSILON = 1e-5
MASKED = -1e30  # a score no attention weight survives (fp32)


@dataclass(frozen=True, slots=True)
class Dims:
    vocab_size: int
    model_dims: int
    num_heads: int
    dims_per_head: int
    hidden_dims: int
    num_layers: int
    rotary_dim: int


def _layer_shapes(dims: Dims) -> dict[str, tuple[int, ...]]:
    """Each layer's arrays, by their name after "transformer.x_layers_<i>.", with their shapes."""
    d, n, h, f = dims.model_dims, dims.num_heads, dims.dims_per_head, dims.hidden_dims
    return {
        "layer_norm.scale": (d,),
        "layer_norm.bias": (d,),
        "self_attention.combined_qkv.w": (3, d, n, h),
        "self_attention.post.w": (d, n, h),
        "ff_layer.ffn_layer1.linear.w": (d, f),
        "ff_layer.ffn_layer1.bias.b": (f,),
        "ff_layer.ffn_layer2.linear.w": (f, d),
        "ff_layer.ffn_layer2.bias.b": (d,),
    }


def _top_shapes(dims: Dims) -> dict[str, tuple[int, ...]]:
    d, v = dims.model_dims, dims.vocab_size
    return {
        "embedding_lookup.emb_var": (v, d),
        "softmax.logits_ffn.linear.w": (d, v),
        "softmax.logits_ffn.bias.b": (v,),
        "final_ln.scale": (d,),
        "final_ln.bias": (d,),
    }


def read_dims(checkpoint: CheckpointReader, num_layers: int, rotary_dim: int) -> Dims:
    """The model's dimensions from its arrays' shapes (the embedding, layer 0's q/k/v and first FFN matrix)."""
    vocab_size, model_dims = _expect_rank(read_shape(checkpoint, "embedding_lookup.emb_var"), 2, "embedding")
    _, _, num_heads, dims_per_head = _expect_rank(
        read_shape(checkpoint, "transformer.x_layers_0.self_attention.combined_qkv.w"), 4, "combined_qkv")
    _, hidden_dims = _expect_rank(read_shape(checkpoint, "transformer.x_layers_0.ff_layer.ffn_layer1.linear.w"), 2,
                                  "ffn_layer1")
    if not isinstance(rotary_dim, int) or rotary_dim % 2 or not 0 < rotary_dim <= dims_per_head:
        raise LoadError(f"the manifest's rotary_dim {rotary_dim!r} must be even and at most the head size "
                        f"{dims_per_head}")
    return Dims(vocab_size, model_dims, num_heads, dims_per_head, hidden_dims, num_layers, rotary_dim)


def _expect_rank(shape: tuple[int, ...], rank: int, what: str) -> tuple[int, ...]:
    if len(shape) != rank:
        raise LoadError(f"the {what} array has shape {list(shape)}; GPT-J's has {rank} dimensions")
    return shape


def read_weights(checkpoint: CheckpointReader, dims: Dims) -> dict:
    """Every array, shape-checked, as device arrays; the layers' stacked on a leading axis for lax.scan."""
    weights = {name: jnp.asarray(read_array(checkpoint, name, shape)) for name, shape in _top_shapes(dims).items()}
    layers = {}
    for name, shape in _layer_shapes(dims).items():
        per_layer = [read_array(checkpoint, f"transformer.x_layers_{i}.{name}", shape) for i in range(dims.num_layers)]
        layers[name] = jnp.asarray(np.stack(per_layer))
    weights["layers"] = layers
    return weights


def _layer_norm(x, scale, bias):
    mean = x.mean(-1, keepdims=True)
    variance = jnp.square(x - mean).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(variance + LAYER_NORM_EPSILON) * scale + bias


def _rotary(x, positions, rotary_dim: int):
    """x [..., T, N, H] at positions [T]: rotate pairs (x0, x1) of the first rotary_dim features (GPT-J's
    rotate_every_two, sin/cos repeated by 2), the rest as they are."""
    inv_freq = 1.0 / (10000.0 ** (jnp.arange(0, rotary_dim, 2, dtype=jnp.float32) / rotary_dim))
    angles = positions.astype(jnp.float32)[:, None] * inv_freq[None, :]
    sin = jnp.repeat(jnp.sin(angles), 2, axis=-1)[:, None, :]
    cos = jnp.repeat(jnp.cos(angles), 2, axis=-1)[:, None, :]
    rotated, passed = x[..., :rotary_dim], x[..., rotary_dim:]
    swapped = jnp.stack([-rotated[..., 1::2], rotated[..., ::2]], axis=-1).reshape(rotated.shape)
    return jnp.concatenate([rotated * cos + swapped * sin, passed], axis=-1)


def _feed_forward(h, layer):
    hidden = h @ layer["ff_layer.ffn_layer1.linear.w"] + layer["ff_layer.ffn_layer1.bias.b"]
    hidden = jax.nn.gelu(hidden, approximate=True)
    return hidden @ layer["ff_layer.ffn_layer2.linear.w"] + layer["ff_layer.ffn_layer2.bias.b"]


def _logits(weights, x):
    x = _layer_norm(x, weights["final_ln.scale"], weights["final_ln.bias"])
    return x @ weights["softmax.logits_ffn.linear.w"] + weights["softmax.logits_ffn.bias.b"]


def _attend(q, keys, values, mask, layer):
    """q [B, T, N, H] against keys/values [B, S, N, H] where mask [B or 1, T, S]; the output projection applied."""
    scores = jnp.einsum("btnh,bsnh->bnts", q, keys) / jnp.sqrt(jnp.float32(q.shape[-1]))
    weights = jax.nn.softmax(jnp.where(mask[:, None], scores, MASKED), axis=-1)
    context = jnp.einsum("bnts,bsnh->btnh", weights, values)
    return jnp.einsum("btnh,dnh->btd", context, layer["self_attention.post.w"])


def _prompt_layers(weights, ids, length, rotary_dim: int, cache_len: int):
    """ids [T], `length` of them real → the last layer's output [T, D] and the cache [L, 1, cache_len, N, H]."""
    steps = ids.shape[0]
    positions = jnp.arange(steps)
    causal = (positions[None, :] <= positions[:, None]) & (positions[None, :] < length)

    def layer_step(x, layer):
        h = _layer_norm(x, layer["layer_norm.scale"], layer["layer_norm.bias"])
        q, k, v = jnp.einsum("td,kdnh->ktnh", h, layer["self_attention.combined_qkv.w"])
        q, k = _rotary(q, positions, rotary_dim), _rotary(k, positions, rotary_dim)
        attended = _attend(q[None], k[None], v[None], causal[None], layer)[0]
        padding = [(0, cache_len - steps), (0, 0), (0, 0)]
        return x + attended + _feed_forward(h, layer), (jnp.pad(k, padding)[None], jnp.pad(v, padding)[None])

    x = weights["embedding_lookup.emb_var"][ids]
    return jax.lax.scan(layer_step, x, weights["layers"])


def _candidates(log_probs, eos_id, allow_eos, top_k: int):
    """Per beam ([B, V] log-probs): its top_k best tokens with their log-probs, and the log-prob of ending now. Before
    the minimum decode steps EOS gets -1e20, as praxis's beam search does before both choices."""
    is_eos = jnp.arange(log_probs.shape[-1]) == eos_id
    log_probs = jnp.where(is_eos & ~allow_eos, -1e20, log_probs)
    values, ids = jax.lax.top_k(log_probs, top_k)
    return values, ids, log_probs[..., eos_id]


@functools.partial(jax.jit, static_argnames=("rotary_dim", "cache_len", "beams", "top_k"))
def prompt_pass(weights, ids, length, eos_id, allow_eos, *, rotary_dim: int, cache_len: int, beams: int,
                top_k: int):
    """ids [T] (a prompt padded to its bucket, `length` real tokens) → (the candidates after its last real token,
    for each of `beams` identical beams; the key/value cache [L, beams, cache_len, N, H] of the prompt)."""
    x, (keys, values) = _prompt_layers(weights, ids, length, rotary_dim, cache_len)
    last = jax.lax.dynamic_index_in_dim(x, length - 1, keepdims=False)
    log_probs = jax.nn.log_softmax(_logits(weights, last))
    log_probs = jnp.broadcast_to(log_probs, (beams, *log_probs.shape))
    cache_shape = (keys.shape[0], beams, *keys.shape[2:])
    return (_candidates(log_probs, eos_id, allow_eos, top_k),
            jnp.broadcast_to(keys, cache_shape), jnp.broadcast_to(values, cache_shape))


@functools.partial(jax.jit, static_argnames=("rotary_dim",))
def all_log_probs(weights, ids, length, *, rotary_dim: int):
    """ids [T], `length` of them real → log-probs [T, V] of the next token after each position (for Score)."""
    x, _ = _prompt_layers(weights, ids, length, rotary_dim, ids.shape[0])
    return jax.nn.log_softmax(_logits(weights, x))


@functools.partial(jax.jit, static_argnames=("rotary_dim", "top_k"))
def extend_step(weights, keys, values, parents, ids, position, eos_id, allow_eos, *, rotary_dim: int, top_k: int):
    """One token per beam: ids [B] at `position`, each continuing the beam `parents[b]` of the cache
    [L, B, S, N, H] (Sax shuffles its cache by the chosen hypotheses the same way) → (the candidates after it, the
    cache)."""
    keys, values = keys[:, parents], values[:, parents]
    positions = jnp.full((1,), position)
    visible = (jnp.arange(keys.shape[2]) <= position)[None, None, :]

    def layer_step(x, scanned):
        layer, layer_keys, layer_values = scanned
        h = _layer_norm(x, layer["layer_norm.scale"], layer["layer_norm.bias"])
        q, k, v = jnp.einsum("bd,kdnh->kbnh", h, layer["self_attention.combined_qkv.w"])
        q, k = _rotary(q[:, None], positions, rotary_dim), _rotary(k[:, None], positions, rotary_dim)
        layer_keys = jax.lax.dynamic_update_slice_in_dim(layer_keys, k, position, axis=1)
        layer_values = jax.lax.dynamic_update_slice_in_dim(layer_values, v[:, None], position, axis=1)
        attended = _attend(q, layer_keys, layer_values, visible, layer)[:, 0]
        return x + attended + _feed_forward(h, layer), (layer_keys, layer_values)

    x = weights["embedding_lookup.emb_var"][ids]
    x, (keys, values) = jax.lax.scan(layer_step, x, (weights["layers"], keys, values))
    return _candidates(jax.nn.log_softmax(_logits(weights, x)), eos_id, allow_eos, top_k), keys, values
