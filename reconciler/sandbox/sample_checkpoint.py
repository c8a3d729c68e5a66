"""A small random GPT-J in Hugging Face layout (config.json, model.safetensors, vocab.json, merges.txt), for trying
the pipeline locally.

The sandbox has no model hub: the demo converts and uploads this instead of the 24 GB GPT-J 6B. It has GPT-J's
structure (rotary every two, untied lm_head with bias) and EleutherAI's 50400-row vocabulary, so the converter's
explicit pad to Sax's 50401 rows shows too. Its tokenizer is a GPT-2-style byte-level BPE trained with `tokenizers`
on sample_text.txt (the same files every time); like GPT-J's own rows 50257..50399, the rows past that vocabulary
are never predicted (their lm_head bias is very negative), as a model trained on the tokenizer's output would not.
"""

from __future__ import annotations

import json
from pathlib import Path

SAMPLE_SHAPE = {"n_layer": 2, "n_embd": 64, "n_head": 4, "rotary_dim": 8, "vocab_size": 50400, "n_positions": 128}
SAMPLE_TEXT = Path(__file__).with_name("sample_text.txt")
TOKENIZER_VOCAB_SIZE = 1000  # an upper bound: the merges stop earlier, when no pair occurs twice in the text
UNSEEN_TOKEN_BIAS = -30.0


def write_sample_tokenizer(directory: Path) -> int:
    """Train the byte-level BPE on the sample text and write vocab.json and merges.txt; returns its vocabulary size."""
    from tokenizers import ByteLevelBPETokenizer

    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator([SAMPLE_TEXT.read_text()], vocab_size=TOKENIZER_VOCAB_SIZE, min_frequency=2,
                                  special_tokens=["<|endoftext|>"], show_progress=False)
    tokenizer.save_model(str(directory))
    return tokenizer.get_vocab_size()


def write_sample_gptj(directory: Path, seed: int = 0) -> Path:
    """Write the sample into directory (created); returns it. Weights are N(0, 0.02²), layer norms near 1."""
    import numpy as np
    from safetensors.numpy import save_file

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer_size = write_sample_tokenizer(directory)
    rng = np.random.default_rng(seed)
    layers, d, vocab = SAMPLE_SHAPE["n_layer"], SAMPLE_SHAPE["n_embd"], SAMPLE_SHAPE["vocab_size"]
    ffn = 4 * d

    def weight(*shape: int) -> np.ndarray:
        return (0.02 * rng.standard_normal(shape)).astype(np.float32)

    def norm_scale() -> np.ndarray:
        return (1 + weight(d)).astype(np.float32)

    tensors = {"transformer.wte.weight": weight(vocab, d)}
    for i in range(layers):
        prefix = f"transformer.h.{i}."
        tensors |= {prefix + "ln_1.weight": norm_scale(), prefix + "ln_1.bias": weight(d)}
        tensors |= {prefix + f"attn.{p}_proj.weight": weight(d, d) for p in ("q", "k", "v", "out")}
        tensors |= {prefix + "mlp.fc_in.weight": weight(ffn, d), prefix + "mlp.fc_in.bias": weight(ffn),
                    prefix + "mlp.fc_out.weight": weight(d, ffn), prefix + "mlp.fc_out.bias": weight(d)}
    lm_head_bias = weight(vocab)
    lm_head_bias[tokenizer_size:] = UNSEEN_TOKEN_BIAS
    tensors |= {"transformer.ln_f.weight": norm_scale(), "transformer.ln_f.bias": weight(d),
                "lm_head.weight": weight(vocab, d), "lm_head.bias": lm_head_bias}

    config = {"model_type": "gptj", "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
              "tie_word_embeddings": False, "n_inner": None, **SAMPLE_SHAPE}
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    return directory
