"""Read a Hugging Face GPT-J config.json and refuse what the Pax GPT-J layout cannot hold."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import SaxctlError


@dataclass(frozen=True, slots=True)
class GptjDims:
    vocab_size: int
    model_dims: int
    num_heads: int
    dims_per_head: int
    num_layers: int
    hidden_dims: int  # the feed-forward width
    rotary_dim: int


def load_gptj_dims(config_path: Path) -> GptjDims:
    try:
        config = json.loads(config_path.read_text())
    except FileNotFoundError:
        raise SaxctlError(f"{config_path}: missing; a Hugging Face model directory has a config.json") from None
    except (OSError, ValueError) as error:
        raise SaxctlError(f"{config_path}: not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise SaxctlError(f"{config_path}: expected a JSON object")

    def field(name: str, kind: type = int):
        value = config.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SaxctlError(f"{config_path}: {name} must be a {kind.__name__}, found {value!r}")
        return value

    if config.get("model_type") != "gptj":
        raise SaxctlError(
            f"{config_path}: model_type is {config.get('model_type')!r}, not 'gptj'",
            hint="Only GPT-J checkpoints convert to saxml's GPT-J params (saxml.server.pax.lm.params.gptj).",
        )
    # Pax's GPT-J uses tanh-approximated GELU, untied output embeddings and no bias on q/k/v/out: HF GPT-J's shape.
    if config.get("activation_function", "gelu_new") != "gelu_new":
        raise SaxctlError(f"{config_path}: activation_function is {config['activation_function']!r}, "
                          "Pax GPT-J uses gelu_new")
    if config.get("tie_word_embeddings") is True:
        raise SaxctlError(f"{config_path}: tie_word_embeddings is true; Pax GPT-J has a separate softmax layer")
    model_dims, num_heads = field("n_embd"), field("n_head")
    if num_heads <= 0 or model_dims % num_heads:
        raise SaxctlError(f"{config_path}: n_embd {model_dims} is not a multiple of n_head {num_heads}")
    dims_per_head = model_dims // num_heads
    rotary_dim = config.get("rotary_dim") or dims_per_head
    if not isinstance(rotary_dim, int) or rotary_dim % 2 or rotary_dim > dims_per_head:
        raise SaxctlError(f"{config_path}: rotary_dim {rotary_dim!r} must be even and at most "
                          f"the head size {dims_per_head}")
    hidden_dims = config.get("n_inner") or 4 * model_dims
    return GptjDims(
        vocab_size=field("vocab_size"),
        model_dims=model_dims,
        num_heads=num_heads,
        dims_per_head=dims_per_head,
        num_layers=field("n_layer"),
        hidden_dims=hidden_dims,
        rotary_dim=rotary_dim,
    )
