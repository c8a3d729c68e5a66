"""An independent GPT-J and Sax beam search in plain numpy, over the Hugging Face weights (safetensors), with no
key/value cache: every step recomputes the whole sequence. What the JAX model under test must agree with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from threadpoolctl import threadpool_limits


class HfGptj:
    def __init__(self, directory: Path):
        self.weights = {name: value.astype(np.float64) for name, value in
                        load_file(str(directory / "model.safetensors")).items()}
        config = json.loads((directory / "config.json").read_text())
        self.layers, self.heads, self.rotary_dim = config["n_layer"], config["n_head"], config["rotary_dim"]

    @threadpool_limits.wrap(limits=1, user_api="blas")  # small matrices: BLAS threads only fight over the cores
    def log_probs(self, ids: list[int]) -> np.ndarray:
        """[T, V]: log p(next token | ids[:t+1]) for every t, in float64."""
        w = self.weights
        x = w["transformer.wte.weight"][ids]
        steps = len(ids)
        for i in range(self.layers):
            p = f"transformer.h.{i}."
            h = _layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"])
            q, k, v = (h @ w[p + f"attn.{name}_proj.weight"].T for name in "qkv")
            q, k, v = (m.reshape(steps, self.heads, -1) for m in (q, k, v))
            q, k = _rotate(q, self.rotary_dim), _rotate(k, self.rotary_dim)
            scores = np.einsum("tnh,snh->nts", q, k) / np.sqrt(q.shape[-1])
            scores = np.where(np.tril(np.ones((steps, steps), bool)), scores, -np.inf)
            attention = np.exp(scores - scores.max(-1, keepdims=True))
            attention /= attention.sum(-1, keepdims=True)
            context = np.einsum("nts,snh->tnh", attention, v).reshape(steps, -1)
            mlp = _gelu_new(h @ w[p + "mlp.fc_in.weight"].T + w[p + "mlp.fc_in.bias"])
            attended = context @ w[p + "attn.out_proj.weight"].T
            x = x + attended + mlp @ w[p + "mlp.fc_out.weight"].T + w[p + "mlp.fc_out.bias"]
        x = _layer_norm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"])
        logits = x @ w["lm_head.weight"].T + w["lm_head.bias"]
        shifted = logits - logits.max(-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _layer_norm(x, scale, bias):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-5) * scale + bias


def _gelu_new(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def _rotate(x, rotary_dim):
    """HF's apply_rotary_pos_emb with rotate_every_two on the first rotary_dim features of each head."""
    positions = np.arange(x.shape[0])[:, None]
    inv_freq = 1.0 / 10000 ** (np.arange(0, rotary_dim, 2) / rotary_dim)
    sin = np.repeat(np.sin(positions * inv_freq), 2, axis=-1)[:, None, :]
    cos = np.repeat(np.cos(positions * inv_freq), 2, axis=-1)[:, None, :]
    part = x[..., :rotary_dim]
    every_two = np.empty_like(part)
    every_two[..., ::2], every_two[..., 1::2] = -part[..., 1::2], part[..., ::2]
    return np.concatenate([part * cos + every_two * sin, x[..., rotary_dim:]], axis=-1)


def sax_beam_search(model: HfGptj, prompt: list[int], eos: int, *, beams=4, per_beam=4, min_steps=30, max_steps=128,
                    alpha=0.5) -> list[tuple[list[int], float]]:
    """praxis's beam search as its source reads (early_exit off): returns (generated tokens with EOS, score)."""
    live = [([], 0.0)] + [([], -1e9 * b) for b in range(1, beams)]
    finished = [([], -1e9)] * beams
    for step in range(max_steps):
        norm = ((step + 1 + 5) / 5) ** alpha
        options = []
        for b, (tokens, score) in enumerate(live):
            log_probs = model.log_probs(prompt + tokens)[-1].copy()
            if step < min_steps:
                log_probs[eos] = -1e20
            finished.append((tokens + [eos], max(-1e9, score + log_probs[eos]) / norm))
            for token in np.argsort(-log_probs, kind="stable")[:per_beam]:
                options.append((tokens + [int(token)], score + log_probs[token] - (1e9 if token == eos else 0)))
        finished = sorted(finished, key=lambda f: -f[1])[:beams]  # sorted() is stable: earlier entries win ties
        live = sorted(options, key=lambda o: -o[1])[:beams]
    return finished
