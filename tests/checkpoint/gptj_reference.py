"""A small, readable GPT-J forward pass in JAX over a Pax tree, to prove a converted checkpoint computes HF's logits."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

PAX_PREFIX = "mdl_vars.params.lm."


def load_pax_tree(checkpoint_root: Path) -> dict[str, np.ndarray]:
    """Every mdl_vars.params.lm.* zarr array of checkpoint_root/state, by its path after the prefix."""
    import tensorstore as ts

    tree = {}
    for array_dir in sorted((checkpoint_root / "state").iterdir()):
        if array_dir.name.startswith(PAX_PREFIX):
            spec = {"driver": "zarr", "kvstore": {"driver": "file", "path": str(array_dir)}}
            tree[array_dir.name[len(PAX_PREFIX) :]] = ts.open(spec).result().read().result()
    return tree


def layer_norm(x, scale, bias, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps) * scale + bias


def rotate_every_two(x):
    """GPT-J's rotary pairs adjacent features (x0, x1) → (-x1, x0), not the two halves as in GPT-NeoX."""
    pairs = jnp.stack([-x[..., 1::2], x[..., ::2]], axis=-1)
    return pairs.reshape(x.shape)


def apply_rotary(x, rotary_dim):
    """x: [T, N, H]; rotate the first rotary_dim features of every head by position."""
    positions = jnp.arange(x.shape[0], dtype=jnp.float32)
    inv_freq = 1.0 / (10000 ** (jnp.arange(0, rotary_dim, 2, dtype=jnp.float32) / rotary_dim))
    angles = positions[:, None] * inv_freq[None, :]  # [T, rotary_dim / 2]
    sin = jnp.repeat(jnp.sin(angles), 2, axis=-1)[:, None, :]
    cos = jnp.repeat(jnp.cos(angles), 2, axis=-1)[:, None, :]
    rotated, passed = x[..., :rotary_dim], x[..., rotary_dim:]
    rotated = rotated * cos + rotate_every_two(rotated) * sin
    return jnp.concatenate([rotated, passed], axis=-1)


def attention(h, layer, rotary_dim):
    q, k, v = jnp.einsum("td,kdnh->ktnh", h, layer["self_attention.combined_qkv.w"])
    q, k = apply_rotary(q, rotary_dim), apply_rotary(k, rotary_dim)
    scores = jnp.einsum("tnh,snh->nts", q, k) / jnp.sqrt(q.shape[-1])
    causal = jnp.tril(jnp.ones((h.shape[0], h.shape[0]), dtype=bool))
    weights = jax.nn.softmax(jnp.where(causal, scores, jnp.finfo(jnp.float32).min), axis=-1)
    context = jnp.einsum("nts,snh->tnh", weights, v)
    return jnp.einsum("tnh,dnh->td", context, layer["self_attention.post.w"])


def feed_forward(h, layer):
    hidden = h @ layer["ff_layer.ffn_layer1.linear.w"] + layer["ff_layer.ffn_layer1.bias.b"]
    hidden = jax.nn.gelu(hidden, approximate=True)  # HF's gelu_new
    return hidden @ layer["ff_layer.ffn_layer2.linear.w"] + layer["ff_layer.ffn_layer2.bias.b"]


def forward(tree: dict[str, np.ndarray], input_ids: np.ndarray, rotary_dim: int) -> np.ndarray:
    """Logits [T, V] for one sequence: GPT-J's parallel block, x + attention(ln(x)) + mlp(ln(x))."""
    x = jnp.asarray(tree["embedding_lookup.emb_var"])[input_ids]
    num_layers = len({name.split(".")[1] for name in tree if name.startswith("transformer.x_layers_")})
    for i in range(num_layers):
        prefix = f"transformer.x_layers_{i}."
        layer = {name[len(prefix) :]: jnp.asarray(value) for name, value in tree.items() if name.startswith(prefix)}
        h = layer_norm(x, layer["layer_norm.scale"], layer["layer_norm.bias"])
        x = x + attention(h, layer, rotary_dim) + feed_forward(h, layer)
    x = layer_norm(x, tree["final_ln.scale"], tree["final_ln.bias"])
    return np.asarray(x @ tree["softmax.logits_ffn.linear.w"] + tree["softmax.logits_ffn.bias.b"])
