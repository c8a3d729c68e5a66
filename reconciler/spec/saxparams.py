"""Sax params classes saxctl knows, with the ICI mesh each shards over (so the chips its model server must have)."""

from __future__ import annotations

import math

# Read from google/saxml at eb93f3e (2026-07-14): saxml/server/pax/lm/params/{gptj,lm_cloud}.py, ICI_MESH_SHAPE of
# each registered class (inherited where the class does not set it). A class not listed here is not checked.
_GPTJ = "saxml.server.pax.lm.params.gptj."
_LM_CLOUD = "saxml.server.pax.lm.params.lm_cloud."
ICI_MESH_SHAPES: dict[str, tuple[int, ...]] = {
    _GPTJ + "GPTJ": (1, 1, 1),
    _GPTJ + "GPTJ4BF16BS32": (1, 1, 4),
    _GPTJ + "GPTJ4TokenizedBF16BS32": (1, 1, 4),
    _LM_CLOUD + "LLaMA7BFP16TPUv5e": (1, 1, 4),
    _LM_CLOUD + "LLaMA7BTPUv5e4": (1, 1, 4),
    _LM_CLOUD + "LLaMA7BTPUv5e8": (1, 1, 8),
    _LM_CLOUD + "LLaMA7BTPUv5e16": (1, 1, 16),
    _LM_CLOUD + "LLaMA70BFP16TPUv5e16": (1, 1, 16),
    _LM_CLOUD + "LLaMA70BFP16TPUv5e32": (1, 1, 32),
    _LM_CLOUD + "LLaMA70BFP16TPUv5e64": (1, 1, 64),
    _LM_CLOUD + "LLaMA70BInt8TPUv5e8": (1, 1, 8),
}


def required_chips(model_path: str) -> tuple[int, tuple[int, ...]] | None:
    """(chips, ICI mesh shape) a known params class shards over, or None when saxctl does not know the class."""
    mesh = ICI_MESH_SHAPES.get(model_path)
    return (math.prod(mesh), mesh) if mesh is not None else None


# Rows of the embedding and softmax each class builds (VOCAB_SIZE in saxml/server/pax/lm/params/gptj.py): what a
# converted checkpoint must hold. Only classes that take a GPT-J checkpoint are listed.
VOCAB_SIZES: dict[str, int] = {
    _GPTJ + "GPTJ": 50401,
    _GPTJ + "GPTJ4BF16BS32": 50401,
    _GPTJ + "GPTJ4TokenizedBF16BS32": 50401,
}
